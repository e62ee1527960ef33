"""A CPython layout: struct offsets (data) plus the few semantics that differ by version.

Offsets come from ``layouts_generated.TABLES`` (DWARF of the installed release
builds; ``DEBUG_TABLES`` for a ``Py_DEBUG`` build when one was generated),
overridden by ``_Py_DebugOffsets`` when the target carries them (3.13+).
Semantics are small named predicates, each citing the header it follows, so
model code never compares version numbers itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Unsupported
from . import free_threaded
from .layouts_generated import DEBUG_TABLES, TABLES

# Include/object.h tp_flags bits (cpython-internals.md §3.2).
TPFLAGS_MANAGED_DICT = 1 << 4  # 3.11+
TPFLAGS_MANAGED_WEAKREF = 1 << 3  # 3.12+
TPFLAGS_INLINE_VALUES = 1 << 2  # 3.13+
TPFLAGS_HEAPTYPE = 1 << 9
TPFLAGS_READY = 1 << 12
TPFLAGS_HAVE_GC = 1 << 14
TPFLAGS_LONG_SUBCLASS = 1 << 24
TPFLAGS_TYPE_SUBCLASS = 1 << 31


@dataclass(frozen=True)
class PythonVersion:
    major: int
    minor: int
    micro: int | None  # None when it could not be read (3.8-3.10 without sys.version)
    releaselevel: str = "final"
    serial: int = 0
    debug: bool = False
    free_threaded: bool = False

    @property
    def minor_key(self) -> tuple[int, int]:
        return (self.major, self.minor)

    def __str__(self) -> str:
        micro = "?" if self.micro is None else str(self.micro)
        suffix = {"alpha": "a", "beta": "b", "candidate": "rc"}.get(self.releaselevel, "")
        extra = f"{suffix}{self.serial}" if suffix else ""
        return f"{self.major}.{self.minor}.{micro}{extra}"

    @classmethod
    def from_hex(cls, value: int, debug: bool = False, free_threaded: bool = False) -> PythonVersion:
        """Decode PY_VERSION_HEX (Include/patchlevel.h)."""
        level = {0xA: "alpha", 0xB: "beta", 0xC: "candidate", 0xF: "final"}.get((value >> 4) & 0xF, "final")
        return cls((value >> 24) & 0xFF, (value >> 16) & 0xFF, (value >> 8) & 0xFF, level, value & 0xF,
                   debug, free_threaded)


@dataclass
class Layout:
    version: PythonVersion
    offsets: dict[str, int]
    source: str
    warnings: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> int:
        try:
            return self.offsets[name]
        except KeyError:
            raise Unsupported(f"{name} is not known for CPython {self.version}") from None

    def has(self, name: str) -> bool:
        return name in self.offsets

    # ---- version semantics -------------------------------------------------

    @property
    def key(self) -> tuple[int, int]:
        return self.version.minor_key

    @property
    def free_threaded(self) -> bool:
        """Py_GIL_DISABLED (3.13t+): the object header of free_threaded.py, mimalloc heaps."""
        return self.version.free_threaded

    def refcount_fields(self) -> tuple[tuple[str, int, int], ...]:
        """(name, offset, size) of the words a refcount change writes: one hardware
        watchpoint each. Free-threaded: ob_ref_local and ob_ref_shared (refcount.h);
        else the 8-byte ob_refcnt word."""
        if self.free_threaded:
            return free_threaded.WATCH_FIELDS
        return (("ob_refcnt", self["PyObject.ob_refcnt"], 8),)

    def has_immortal_objects(self) -> bool:
        """PEP 683: immortal refcounts exist from 3.12 (Include/object.h)."""
        return self.key >= (3, 12)

    @property
    def refcount_size(self) -> int:
        """Bytes of ob_refcnt: 8 up to 3.13; 4 from 3.14, where the uint32_t ob_refcnt
        shares its 64-bit word with ob_overflow and ob_flags (Include/object.h)."""
        return self.offsets.get("PyObject.ob_refcnt_size", 8)

    def decode_refcount(self, word: int) -> int:
        """The refcount held in the object's first 64-bit word (unsigned, as read).

        A 64-bit ob_refcnt is signed (Py_ssize_t). A 32-bit one (3.14+) is
        unsigned, and a count decremented below zero wraps to near 2**32:
        3.14 refcount.h's Py_DECREF (Py_REF_DEBUG) calls _Py_NegativeRefcount
        when ``ob_refcnt > UINT32_MAX - (1 << 20)``; we read such a count as
        the negative number it stands for.
        """
        if self.refcount_size == 4:
            low = word & 0xFFFFFFFF
            return low - (1 << 32) if low > 0xFFFFFFFF - (1 << 20) else low
        word &= (1 << 64) - 1
        return word - (1 << 64) if word >> 63 else word

    def is_immortal(self, ob_refcnt: int) -> bool:
        """3.12/3.13 Include/object.h _Py_IsImmortal: (int32_t)ob_refcnt < 0, where
        Py_INCREF saturates the low 32 bits only, so an immortal count has a zero high
        half (a 64-bit -1 is a count decremented below zero that merely looks immortal).

        3.14 refcount.h: the same test on the 32-bit ob_refcnt; immortals start at
        _Py_IMMORTAL_INITIAL_REFCNT (3 << 30) and incref stops there.
        """
        if not self.has_immortal_objects() or ob_refcnt < 0:
            return False
        return bool(ob_refcnt & 0x80000000) and not ob_refcnt >> 32

    def plausible_live_refcount(self, word: int) -> bool:
        """Could the object's first word be a live object's refcount (not 0, not a pointer)?

        A pointer read as a 64-bit count is huge. Read as 3.14's 32-bit count it
        may look fine, but its high bits land in ob_overflow, which 64-bit builds
        never set (Include/object.h: it exists for 32-bit platforms).
        """
        if self.refcount_size == 4 and (word >> 32) & 0xFFFF:
            return False
        value = self.decode_refcount(word)
        return 0 < value < 1 << 40 or self.is_immortal(value)

    def entry_frame_owner(self) -> int | None:
        """``owner`` of the eval loop's on-C-stack entry frame, which separates its
        activations (3.12+): FRAME_OWNED_BY_CSTACK (3) in 3.12/3.13 pycore_frame.h,
        FRAME_OWNED_BY_INTERPRETER (3) in 3.14+ pycore_interpframe_structs.h, where
        CSTACK became 4 (3.14) or went away (3.15). From DWARF (frame_owner.entry)."""
        return self.offsets.get("frame_owner.entry", 3 if self.key >= (3, 12) else None)

    def frames_may_run_non_code(self) -> bool:
        """3.13+: ``f_executable`` (a _PyStackRef from 3.14) may hold None or another
        non-code object for shim and base frames (pycore_frame.h); such frames are skipped."""
        return self.has("PyThreadState.current_frame")

    def tracemalloc_filename_is_cstring(self) -> bool:
        """3.15 Python/tracemalloc.c: a frame's filename is a UTF-8 ``const char *``
        (kept in the filenames table), no longer a str object (from DWARF)."""
        return self.offsets.get("frame_t.filename_target_size") == 1

    def has_inline_values(self, type_flags: int) -> bool:
        """3.13+ Py_TPFLAGS_INLINE_VALUES: instance attributes live in the object's own block."""
        return self.key >= (3, 13) and bool(type_flags & TPFLAGS_INLINE_VALUES)

    def int_uses_lv_tag(self) -> bool:
        """3.12+ Include/cpython/longintrepr.h: long_value.lv_tag replaces ob_size."""
        return self.has("PyLongObject.lv_tag")

    def int_has_min_one_digit(self) -> bool:
        """3.11+ longobject.c: _PyLong_New and int___sizeof__ count at least one digit, even for 0."""
        return self.key >= (3, 11)

    def str_has_ready_bit(self) -> bool:
        """<=3.11 PyASCIIObject.state has `ready` at bit 7 (removed by PEP 623 in 3.12)."""
        return self.key <= (3, 11)

    def str_state_shift(self) -> int:
        """Bits to drop from PyASCIIObject.state before reading kind (bits 2-4), compact (5)
        and ascii (6): 3.14t Include/cpython/unicodeobject.h makes ``interned`` a whole
        ``unsigned char`` under Py_GIL_DISABLED, moving the bitfields up by 6 (3.13t keeps
        ``interned:2``)."""
        return 6 if self.free_threaded and self.key >= (3, 14) else 0

    def dict_keys_log2(self) -> bool:
        """3.11+ pycore_dict.h: dk_log2_size/dk_kind replace dk_size/dk_lookup."""
        return self.has("PyDictKeysObject.dk_log2_size")

    def preheader_size(self, type_flags: int, is_gc: bool) -> int:
        """Bytes allocated before the object (pycore_object.h _PyType_PreHeaderSize).

        3.11: GC head + 2 words when MANAGED_DICT; 3.12+: + 2 words when
        MANAGED_DICT or MANAGED_WEAKREF (Py_TPFLAGS_PREHEADER).
        """
        size = self.offsets.get("PyGC_Head.size", 16) if is_gc else 0
        if self.key >= (3, 12):
            managed = TPFLAGS_MANAGED_DICT | TPFLAGS_MANAGED_WEAKREF
        elif self.key >= (3, 11):
            managed = TPFLAGS_MANAGED_DICT
        else:
            managed = 0
        if type_flags & managed:
            size += 16
        return size

    def managed_dict_scheme(self, type_flags: int) -> str | None:
        """Where an instance of a Py_TPFLAGS_MANAGED_DICT type keeps its attributes (None: not managed).

        "values_pointer": 3.11 pycore_object.h, values at obj[-4], dict at obj[-3];
        "dict_or_values": 3.12 PyDictOrValues at obj[-3], values tagged with bit 0;
        "inline_values": 3.13+ Py_TPFLAGS_INLINE_VALUES, values at obj + tp_basicsize
        while their ``valid`` byte is set, else the dict at obj[-3];
        "dict_pointer": 3.13+ managed dict without inline values, at obj[-3].
        """
        if self.key < (3, 11) or not type_flags & TPFLAGS_MANAGED_DICT:
            return None
        if self.key == (3, 11):
            return "values_pointer"
        if self.key == (3, 12):
            return "dict_or_values"
        return "inline_values" if self.has_inline_values(type_flags) else "dict_pointer"

    def frame_slot_tag_bits(self) -> int:
        """Low bits of a frame's localsplus slot that are tags, not address (0: plain PyObject *).

        3.14+ slots are _PyStackRef (Include/internal/pycore_stackref.h): bit 0
        marks a reference that is not counted; 3.15 also stores small ints
        unboxed with both bits set (Py_INT_TAG 3). Object pointers are at least
        8-aligned, so clearing two bits never changes one.
        """
        return 3 if self.key >= (3, 14) else 0

    def gc_state_in_runtime(self) -> bool:
        """3.8 keeps GC state in _PyRuntime.gc; 3.9+ per interpreter (pycore_interp.h)."""
        return self.has("_PyRuntimeState.gc")


def table_for(version: PythonVersion) -> tuple[dict[str, int], str]:
    """The generated offsets for a version, or Unsupported.

    A debug build gets its own table when one was generated from a debug
    build's DWARF, else the release table (see has_debug_table)."""
    if version.free_threaded:
        gil = TABLES.get(version.minor_key)
        if gil is None:
            raise Unsupported(f"no layout for free-threaded CPython {version.major}.{version.minor}")
        return (free_threaded.derive_table(gil),
                f"{version.major}.{version.minor} release table with the free-threaded object header "
                "(object structs 16 bytes further; derived, not verified on a binary)")
    if has_debug_table(version):
        return (dict(DEBUG_TABLES[version.minor_key]),
                f"generated table for {version.major}.{version.minor} debug builds (DWARF of a Py_DEBUG build)")
    table = TABLES.get(version.minor_key)
    if table is None:
        known = ", ".join(f"{a}.{b}" for a, b in sorted(TABLES))
        raise Unsupported(f"no layout for CPython {version.major}.{version.minor} (known: {known})")
    return dict(table), f"generated table for {version.major}.{version.minor} (DWARF of a release build)"


def has_debug_table(version: PythonVersion) -> bool:
    """A debug build whose offsets come from a debug build's DWARF, not a release build's."""
    return version.debug and not version.free_threaded and version.minor_key in DEBUG_TABLES
