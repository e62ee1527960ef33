"""Free-threaded builds (3.13t, 3.14t, 3.15t) on fake images laid out to the Py_GIL_DISABLED headers.

No free-threaded interpreter exists on this machine: these images follow
Include/object.h (the 32-byte header: ob_tid, ob_flags/_padding, ob_mutex,
ob_gc_bits, ob_ref_local, ob_ref_shared, ob_type), refcount.h (immortal
local == UINT32_MAX; shared count << 2 | flags) and pycore_object.h (the
deferred-refcount bias: 3.13 +1 local, 3.14 +PY_SSIZE_T_MAX/8 shared). The
runtime is a FakePython whose _Py_DebugOffsets say free_threaded = 1.

Checked against CPython sources (the search tool's stored copies):
- Include/refcount.h (main, 3.15 dev: has _Py_OPAQUE_PYOBJECT): Py_GIL_DISABLED
  _Py_IMMORTAL_REFCNT_LOCAL UINT32_MAX; _Py_REF_SHARED_SHIFT 2, flags 0 init /
  1 maybe-weakref / 2 queued / 3 merged; _Py_REFCNT = local + (shared >> 2),
  and _Py_IMMORTAL_INITIAL_REFCNT (3 << 30) for an immortal; Py_INCREF: the
  owner stores local + 1, another thread adds 1 << 2 to shared; Py_DECREF: the
  owner stores local - 1 and calls _Py_MergeZeroLocalRefcount at 0, another
  thread calls _Py_DecRefShared; Py_SET_REFCNT from another thread writes
  ob_tid = 0, local = 0, shared = refcnt << 2 | _Py_REF_MERGED.
- Include/internal/pycore_object.h: _Py_REF_DEFERRED (PY_SSIZE_T_MAX / 8);
  Objects/object.c (3.14+) _PyObject_SetDeferredRefcount writes ob_ref_shared =
  _Py_REF_SHARED(_Py_REF_DEFERRED, 0), and Python/gc_free_threading.c
  disable_deferred_refcounting subtracts the same.
- Include/internal/pycore_gc.h (Py_GIL_DISABLED): _PyGC_BITS_TRACKED 1 ... DEFERRED 1 << 6.
- Include/internal/pycore_debug_offsets.h (3.13): cookie[8], version,
  free_threaded (@16), then the groups; no group depends on Py_GIL_DISABLED
  (only the values do), so a "t" build's struct has the GIL build's shape,
  which for 3.14 and 3.15 is layouts_generated.DEBUG_OFFSETS (sid's DWARF).
- Include/cpython/unicodeobject.h (v3.14.0): under Py_GIL_DISABLED
  ``unsigned char interned`` then the kind/compact/ascii bitfields.
The object header itself (object.h ob_tid @0 ... ob_type @24) is the one in
pylife/cpython/free_threaded.py.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pylife.commands import CommandFailed, execute
from pylife.cpython import free_threaded as ft
from pylife.cpython import runtime
from pylife.cpython.layout import PythonVersion, table_for
from pylife.cpython.layouts_generated import TABLES
from pylife.record import events as ev
from pylife.session import Session
from pylife.target import Memory, NativeFrame

from .builders import DEBUG_OFFSETS_VALUES, RELEASES, FakePython
from .support import run_json

# Each image reuses FakePython's _Py_DebugOffsets of the same minor (its entry
# positions: layouts_generated.DEBUG_OFFSETS) with the object groups moved by the header.
FT_KEYS = [(3, 13), (3, 14), (3, 15)]
# _Py_DebugOffsets groups whose entries are offsets inside (or sizes of) a struct
# that starts with PyObject_HEAD / PyObject_VAR_HEAD: 16 bytes further in a "t" build.
OBJECT_GROUPS = {"pyobject", "type_object", "heap_type_object", "tuple_object", "list_object", "set_object",
                 "dict_object", "float_object", "long_object", "bytes_object", "unicode_object", "code_object",
                 "gen_object"}
FT_BASE = 0x7F50_0000_0000
TPFLAGS_TYPE_SUBCLASS = 1 << 31
TPFLAGS_HAVE_GC = 1 << 14
OWNER = 0x7FFF_F7D8_A740  # the owning thread's _Py_ThreadId() (its TCB: fs_base)


@pytest.fixture(autouse=True)
def _log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYLIFE_LOG_DIR", str(tmp_path))


class FtImage:
    """A free-threaded process image: the FakePython runtime flagged free-threaded, objects laid out by hand."""

    def __init__(self, key: tuple[int, int]) -> None:
        self.py = FakePython.fresh(key)
        self.t = self.py.target
        # A free-threaded build's _Py_DebugOffsets: its flag set, object offsets 16 bytes further.
        self.write_debug_offsets()
        version = PythonVersion(key[0], key[1], RELEASES[key].micro, free_threaded=True)
        self.L, _source = table_for(version)
        self.cursor = FT_BASE
        self.t.map(FT_BASE, 0x10000)
        self.metatype = self._type(b"type", TPFLAGS_TYPE_SUBCLASS, meta=None)
        self.float_type = self._type(b"float", 0)
        self.tuple_type = self._type(b"tuple", TPFLAGS_HAVE_GC)

    def write_debug_offsets(self, overrides: dict[tuple[str, str], int] | None = None) -> None:
        """A "t" build's _Py_DebugOffsets: the flag set, object groups 16 bytes further, then ``overrides``."""
        moved = {}
        for entry, value in DEBUG_OFFSETS_VALUES[self.py.key].items():
            group, _, name = entry.rpartition(".")
            if group in OBJECT_GROUPS and value:  # 0: an entry the build lacks (co_tlbc in a GIL build)
                moved[(group, name)] = value + ft.HEADER_GROWTH
        self.py.write_debug_offsets({**moved, **(overrides or {})})
        self.t.write_u64(self.py.runtime + 16, 1)  # _Py_DebugOffsets.free_threaded (pycore_debug_offsets.h)

    def alloc(self, size: int) -> int:
        address = self.cursor
        self.cursor += -(-size // 16) * 16
        return address

    def header(self, obj: int, tp: int, local: int = 1, shared: int = 0, gc_bits: int = 0, tid: int = OWNER) -> None:
        self.t.write(obj, struct.pack("<QHBBIqQ", tid, 0, 0, gc_bits, local, shared, tp))

    def _type(self, name: bytes, flags: int, meta: int | None = 0) -> int:
        L = self.L
        tp = self.alloc(L["PyTypeObject.size"])
        text = self.alloc(len(name) + 1)
        self.t.write(text, name + b"\0")
        self.header(tp, tp if meta is None else self.metatype, local=ft.IMMORTAL_REFCNT_LOCAL, tid=0)
        self.t.write_u64(tp + L["PyTypeObject.tp_name"], text)
        self.t.write_u64(tp + L["PyTypeObject.tp_flags"], flags | (1 << 12))  # READY
        basicsize = {b"float": L["PyFloatObject.ob_fval"] + 8, b"tuple": L["PyTupleObject.ob_item"]}
        self.t.write_u64(tp + L["PyTypeObject.tp_basicsize"], basicsize.get(name, L["PyTypeObject.size"]))
        return tp

    def float(self, value: float, **header: int) -> int:
        obj = self.alloc(48)
        self.header(obj, self.float_type, **header)
        self.t.write_f64(obj + self.L["PyFloatObject.ob_fval"], value)
        return obj


@pytest.fixture(params=FT_KEYS, ids=lambda k: f"{k[0]}.{k[1]}t")
def image(request: pytest.FixtureRequest) -> FtImage:
    return FtImage(request.param)


# ---- the header and Py_REFCNT --------------------------------------------------------------


def _header(local: int, shared: int, gc_bits: int = 0) -> ft.Header:
    return ft.Header.decode(struct.pack("<QHBBIqQ", OWNER, 0, 0, gc_bits, local, shared, 0x1000))


def test_refcount_is_local_plus_shifted_shared() -> None:
    bias = ft.deferred_bias((3, 14))
    assert _header(3, 0).refcount(bias) == 3
    assert _header(2, (5 << 2) | 1).refcount(bias) == 7 and _header(2, (5 << 2) | 1).shared_flag == "maybe-weakref"
    merged = _header(0, (4 << 2) | 3)
    assert merged.refcount(bias) == 4 and merged.shared_flag == "merged"
    # Another thread's decref may leave ob_ref_shared briefly negative (arithmetic shift).
    assert _header(3, -(1 << 2) | 2).refcount(bias) == 2
    immortal = _header(ft.IMMORTAL_REFCNT_LOCAL, 0)
    assert immortal.immortal and immortal.refcount(bias) == ft.IMMORTAL_INITIAL_REFCNT


def test_deferred_refcount_bias_is_removed_per_version() -> None:
    # 3.13 _PyObject_SetDeferredRefcount: local += 1, shared = _Py_REF_QUEUED.
    assert _header(1 + 2, 2, ft.GC_DEFERRED).refcount(ft.deferred_bias((3, 13))) == 2
    # 3.14+ Objects/object.c: shared = _Py_REF_SHARED(_Py_REF_DEFERRED, 0), the count in the high bits.
    for key in ((3, 14), (3, 15)):
        deferred = _header(1, (ft.REF_DEFERRED << 2) + (3 << 2), ft.GC_DEFERRED)
        assert deferred.deferred and deferred.refcount(ft.deferred_bias(key)) == 4
        assert deferred.facts()["ob_gc_bits"] == ["deferred"] and deferred.shared_flag == "init"
    # Unbiased, Py_REFCNT in the target reads the bias too: _Py_REF_DEFERRED + 4.
    assert deferred.refcount((0, 0)) == ft.REF_DEFERRED + 4


@pytest.mark.parametrize("key", FT_KEYS, ids=lambda k: f"{k[0]}.{k[1]}t")
def test_derived_table_moves_object_structs_by_the_header(key: tuple[int, int]) -> None:
    gil = TABLES[key]
    table, source = table_for(PythonVersion(key[0], key[1], 0, free_threaded=True))
    assert "derived" in source and "not verified" in source
    assert (table["PyObject.size"], table["PyObject.ob_type"], table["PyObject.ob_ref_local"]) == (32, 24, 12)
    assert "PyObject.ob_refcnt" not in table  # no single refcount word: code must not read one
    assert table["PyTupleObject.ob_item"] == gil["PyTupleObject.ob_item"] + 16
    assert table["PyTypeObject.tp_flags"] == gil["PyTypeObject.tp_flags"] + 16
    assert table["PyVarObject.ob_size"] == 32 and table["PyGC_Head.size"] == 0
    assert table["PyDictKeysObject.dk_nentries"] == gil["PyDictKeysObject.dk_nentries"]  # not an object


# ---- the verbs ------------------------------------------------------------------------------------


def test_version_says_free_threaded(image: FtImage) -> None:
    data = run_json(image.py, ["version"])
    assert data["threading"] == "free-threaded" and "free-threaded object header" in data["layout_source"], data
    assert data["version"].startswith("{}.{}.".format(*image.py.key)), data


def test_layout_comes_from_the_free_threaded_debug_offsets(image: FtImage) -> None:
    """_Py_DebugOffsets (flag and values) decide the version and override the derived table."""
    py = image.py
    code_adaptive = DEBUG_OFFSETS_VALUES[py.key]["code_object.co_code_adaptive"] + ft.HEADER_GROWTH
    # A "t" PyCodeObject has fields the GIL one lacks (3.14+ co_tlbc before co_code_adaptive):
    # the target's own value must win over the derived table, and be named.
    image.write_debug_offsets({("code_object", "co_code_adaptive"): code_adaptive + 8})
    layout = runtime.detect(image.t, Memory(image.t)).layout
    assert layout.free_threaded and layout.key == py.key, layout.version
    assert layout["PyCodeObject.co_code_adaptive"] == code_adaptive + 8
    assert any("PyCodeObject.co_code_adaptive" in w for w in layout.warnings), layout.warnings
    assert (layout["PyObject.ob_type"], layout["PyFloatObject.ob_fval"]) == (ft.OB_TYPE, 32)
    assert not layout.has("PyObject.ob_refcnt") and "_Py_DebugOffsets in the target" in layout.source
    # The same struct with the flag clear is the GIL build of that minor.
    image.t.write_u64(py.runtime + 16, 0)
    assert not runtime.detect(image.t, Memory(image.t)).layout.free_threaded


def test_info_gives_type_refcount_and_an_unknown_verdict(image: FtImage) -> None:
    obj = image.float(2.5, local=2, shared=(3 << 2) | 1)
    data = run_json(image.py, ["info", hex(obj)])
    assert (data["type"], data["refcnt"], data["immortal"], data["preview"]) == ("float", 5, False, "2.5"), data
    # mimalloc pages are not read: never a guessed ALIVE or FREED.
    assert data["verdict"] == "UNKNOWN" and any("mimalloc" in r for r in data["reasons"]), data
    # Objects/object.c _Py_SetImmortalUntracked (Py_GIL_DISABLED): ob_tid = _Py_UNOWNED_TID, local =
    # UINT32_MAX, shared = 0 and _PyGC_BITS_DEFERRED set: immortal wins over the deferred bias.
    immortal = image.float(1.0, local=ft.IMMORTAL_REFCNT_LOCAL, tid=0, gc_bits=ft.GC_DEFERRED)
    data = run_json(image.py, ["info", hex(immortal)])
    assert (data["immortal"], data["refcnt"]) == (True, ft.IMMORTAL_INITIAL_REFCNT), data


def test_gc_state_comes_from_ob_gc_bits(image: FtImage) -> None:
    tup = image.alloc(48)
    image.header(tup, image.tuple_type, gc_bits=ft.GC_TRACKED)
    gc = run_json(image.py, ["info", hex(tup)])["gc"]
    assert gc["tracked"] is True and gc["generation"] is None, gc


def test_info_removes_the_deferred_bias_of_the_version(image: FtImage) -> None:
    """pycore_object.h _PyObject_SetDeferredRefcount: 3.13 local += 1 (shared = _Py_REF_QUEUED);
    3.14+ shared += _Py_REF_DEFERRED. Py_REFCNT in the target includes the bias; pylife reports without."""
    local_bias, shared_bias = ft.deferred_bias(image.py.key)
    assert (local_bias, shared_bias) == ((1, 0) if image.py.key == (3, 13) else (0, ft.REF_DEFERRED << 2))
    # Raw field values as object.c writes them, plus two references from another thread, queued.
    obj = image.alloc(48)  # an empty tuple: a GC type, so the GC state is reported
    image.header(obj, image.tuple_type, local=1 + local_bias, shared=shared_bias + (2 << 2) + 2,
                 gc_bits=ft.GC_DEFERRED | ft.GC_TRACKED)
    image.t.write_i64(obj + image.L["PyVarObject.ob_size"], 0)
    data = run_json(image.py, ["info", hex(obj)])
    assert (data["type"], data["refcnt"], data["immortal"], data["gc"]["tracked"]) == ("tuple", 3, False, True), data
    assert data["size"] == image.L["PyTupleObject.ob_item"], data  # empty: header 32, ob_size (3.14+: ob_hash)
    assert sorted(data["allocator"]["ob_gc_bits"]) == ["deferred", "tracked"], data["allocator"]
    assert data["allocator"]["shared_flag"] == "queued" and data["allocator"]["ob_tid"] == OWNER


def _unnamed(offset: int) -> NativeFrame:
    return NativeFrame(0x7F00_0000_0000 + offset, f"libpython3.14t.so.1.0+{offset:#x}", None, None,
                       "/usr/lib/libpython3.14t.so.1.0")


def _fire(image: FtImage, handle: int, field: str, value: int, frames: list[NativeFrame]) -> bool:
    address, _size, _on_hit = image.t.watchpoints[handle]
    if field == "local":
        image.t.write_u32(address, value)
    else:
        image.t.write_i64(address, value)
    image.t.selected_thread = 1
    image.t.frames[1] = frames
    return image.t.fire(handle)


def test_watch_covers_both_fields_with_two_slots(image: FtImage) -> None:
    obj = image.float(2.5, local=1, shared=0)
    session = Session(image.t)
    data = run_json(image.py, ["watch", hex(obj)], session)
    assert (data["refcnt"], data["slots_used"], data["slots_total"]) == (1, 2, 4), data
    assert any("ob_ref_local and ob_ref_shared" in w and "2 hardware slots" in w for w in data["warnings"])
    spans = sorted((a - obj, size) for a, size, _hit in image.t.watchpoints.values())
    assert spans == [(ft.OB_REF_LOCAL, 4), (ft.OB_REF_SHARED, 8)]
    local, shared = sorted(image.t.watchpoints, key=lambda h: image.t.watchpoints[h][0])
    # The owner increfs (local), another thread increfs (shared += 1 << 2), then both drop theirs.
    assert _fire(image, local, "local", 2, [_unnamed(0x10)]) is False
    assert _fire(image, shared, "shared", 1 << 2, [_unnamed(0x20)]) is False
    assert _fire(image, shared, "shared", 0, [_unnamed(0x30)]) is False
    assert _fire(image, local, "local", 1, [_unnamed(0x40)]) is False
    assert _fire(image, local, "local", 0, [_unnamed(0x50)]) is False
    history = session.recorder.history_of(obj)
    assert history is not None
    assert [(e.old, e.new, e.kind) for e in history.events] == [
        (1, 2, ev.INCREF), (2, 3, ev.INCREF), (3, 2, ev.DECREF), (2, 1, ev.DECREF), (1, 0, ev.ZERO)]
    listing = run_json(image.py, ["watches"], session)
    assert listing["slots_used"] == 2 and listing["watches"][0]["slots"] == 2
    # A second object takes the last two slots; a third is refused, naming why.
    other = image.float(3.5)
    assert run_json(image.py, ["watch", hex(other)], session)["slots_used"] == 4
    with pytest.raises(CommandFailed, match=r"needs 2 \(ob_ref_local and ob_ref_shared\)"):
        execute(session, ["watch", hex(image.float(4.5))])
    assert run_json(image.py, ["unwatch", hex(obj)], session)["slots_used"] == 2
    assert len(image.t.watchpoints) == 2


def test_watch_follows_a_merge_and_the_other_threads_decref_to_zero(image: FtImage) -> None:
    """refcount.h: the owner's Py_DECREF to local 0 with a shared reference left calls
    _Py_MergeZeroLocalRefcount (ob_tid = 0, shared |= _Py_REF_MERGED); the other thread's
    _Py_DecRefShared then takes the merged count to zero."""
    obj = image.float(6.5, local=1, shared=0)
    session = Session(image.t)
    run_json(image.py, ["watch", hex(obj)], session)
    local, shared = sorted(image.t.watchpoints, key=lambda h: image.t.watchpoints[h][0])
    assert _fire(image, shared, "shared", 1 << 2, [_unnamed(0x10)]) is False  # other thread: Py_INCREF
    assert _fire(image, local, "local", 0, [_unnamed(0x20)]) is False  # owner: Py_DECREF, local 1 -> 0
    image.t.write_u64(obj + ft.OB_TID, 0)
    assert _fire(image, shared, "shared", (1 << 2) | 3, [_unnamed(0x30)]) is False  # merged, count kept
    assert _fire(image, shared, "shared", 3, [_unnamed(0x40)]) is False  # other thread: to zero
    history = session.recorder.history_of(obj)
    assert history is not None
    counts = [(e.old, e.new, e.kind) for e in history.events]
    # The merge leaves Py_REFCNT at 1: no event; the zero is the other thread's.
    assert counts == [(1, 2, ev.INCREF), (2, 1, ev.DECREF), (1, 0, ev.ZERO)], counts


@pytest.mark.parametrize("minor,state", [(13, (1 << 2) | (1 << 5) | (1 << 6)),  # 3.13t: interned:2, kind:3 ...
                                         (14, (1 << 8) | (1 << 11) | (1 << 12)),  # 3.14t: interned is a byte
                                         (15, (1 << 8) | (1 << 11) | (1 << 12))])
def test_str_state_bits_per_free_threaded_version(minor: int, state: int) -> None:
    """A compact ASCII str laid out to 3.13t / 3.14t / 3.15t Include/cpython/unicodeobject.h
    (3.15t: assumed the same as v3.14.0's, not read)."""
    from pylife.cpython.layout import Layout
    from pylife.cpython.objects import Objects
    from pylife.target import Memory

    from .fakes import FakeTarget

    layout = Layout(PythonVersion(3, minor, 0, free_threaded=True), ft.derive_table(TABLES[(3, minor)]), "test")
    t = FakeTarget()
    t.map(FT_BASE, 0x1000)
    text = FT_BASE + 0x100
    t.write(text, struct.pack("<QHBBIqQ", OWNER, 0, 0, 0, 1, 0, 0))
    t.write_i64(text + layout["PyASCIIObject.length"], 5)
    t.write_u32(text + layout["PyASCIIObject.state"], state)
    t.write(text + layout["PyASCIIObject.size"], b"hello\0")
    assert Objects(Memory(t), layout).str_value(text, 80) == ("hello", False)
