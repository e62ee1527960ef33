"""Free-threaded builds (``Py_GIL_DISABLED``: 3.13t, 3.14t, 3.15t), read from outside.

The object header (Include/object.h, 3.13 and 3.14, 64-bit)::

    struct _object {
        uintptr_t ob_tid;          // @0  owning thread (_Py_ThreadId), 0 when unowned/merged
        uint16_t ob_flags;         // @8  (3.13: uint16_t _padding)
        PyMutex ob_mutex;          // @10 one byte
        uint8_t ob_gc_bits;        // @11 pycore_gc.h _PyGC_BITS_*
        uint32_t ob_ref_local;     // @12 the owner's count, UINT32_MAX = immortal
        Py_ssize_t ob_ref_shared;  // @16 other threads' count << 2 | flags
        PyTypeObject *ob_type;     // @24
    };

so ``sizeof(PyObject)`` is 32 and every object struct is 16 bytes longer
than in the GIL build; there is no ``PyGC_Head`` in front of GC objects
(pycore_gc.h: the GC walks mimalloc's heaps), only the managed dict/weakref
pre-header. The refcount (refcount.h ``_Py_REFCNT``) is
``ob_ref_local + (ob_ref_shared >> 2)`` with an arithmetic shift; the low 2
bits of ``ob_ref_shared`` are 0 (init), 1 ``_Py_REF_MAYBE_WEAKREF``, 2
``_Py_REF_QUEUED``, 3 ``_Py_REF_MERGED``. Deferred reference counting
(``ob_gc_bits & _PyGC_BITS_DEFERRED``) adds a bias the eval loop never
removes: 3.13 pycore_object.h ``_PyObject_SetDeferredRefcount`` adds one to
``ob_ref_local``; 3.14+ Objects/object.c sets ``ob_ref_shared =
_Py_REF_SHARED(_Py_REF_DEFERRED, 0)``, i.e. ``_Py_REF_DEFERRED``
(pycore_object.h: ``PY_SSIZE_T_MAX / 8``) shifted by ``_Py_REF_SHARED_SHIFT``
in the raw field (gc_free_threading.c ``disable_deferred_refcounting``
subtracts the same), so the flag bits stay clear.

Objects live in mimalloc heaps, not pymalloc pools: pylife does not read
mimalloc pages yet, so a heap object's verdict is UNKNOWN (never a guessed
ALIVE or FREED). Struct offsets beyond the object header come from
``_Py_DebugOffsets`` (its ``free_threaded`` flag says which build) and, for
object structs, the GIL table of the same minor shifted by the header's 16
extra bytes: derived, not verified on a binary (no free-threaded build here).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER_SIZE = 32
HEADER_GROWTH = 16  # sizeof(PyObject) 32 instead of 16
OB_TID, OB_FLAGS, OB_MUTEX, OB_GC_BITS, OB_REF_LOCAL, OB_REF_SHARED, OB_TYPE = 0, 8, 10, 11, 12, 16, 24

IMMORTAL_REFCNT_LOCAL = 0xFFFFFFFF  # refcount.h _Py_IMMORTAL_REFCNT_LOCAL
IMMORTAL_INITIAL_REFCNT = 3 << 30  # what Py_REFCNT reports for an immortal object (3.14 refcount.h)
REF_SHARED_SHIFT = 2
SHARED_FLAGS = {0: "init", 1: "maybe-weakref", 2: "queued", 3: "merged"}  # _Py_REF_SHARED_INIT ... _Py_REF_MERGED
REF_DEFERRED = ((1 << 63) - 1) // 8  # 3.14 pycore_object.h _Py_REF_DEFERRED (PY_SSIZE_T_MAX / 8)

# pycore_gc.h _PyGC_BITS_* (3.13, 3.14)
GC_BITS = {1: "tracked", 2: "finalized", 4: "unreachable", 8: "frozen", 16: "shared", 32: "alive", 64: "deferred"}
GC_TRACKED = 1
GC_DEFERRED = 64

# The two refcount fields a watch covers: one hardware slot each (x86-64 DR0-DR3).
WATCH_FIELDS = (("ob_ref_local", OB_REF_LOCAL, 4), ("ob_ref_shared", OB_REF_SHARED, 8))

# Structs that begin with a PyObject header in the generated tables: their
# offsets move by HEADER_GROWTH. PyDictKeysObject, PyDictValues, frames and the
# runtime structs have no object header and do not move this way.
OBJECT_STRUCTS = frozenset({
    "PyVarObject", "PyTypeObject", "PyHeapTypeObject", "PyASCIIObject", "PyCompactUnicodeObject",
    "PyUnicodeObject", "PyBytesObject", "PyLongObject", "PyFloatObject", "PyTupleObject", "PyListObject",
    "PyDictObject", "PySetObject", "PyCodeObject", "PyFunctionObject", "PyModuleObject", "PyFrameObject",
    "PyGenObject", "PyCellObject", "PyDescrObject", "PyMemberDescrObject",
})
HEADER_FIELDS = {
    "PyObject.size": HEADER_SIZE, "PyObject.ob_tid": OB_TID, "PyObject.ob_flags": OB_FLAGS,
    "PyObject.ob_mutex": OB_MUTEX, "PyObject.ob_gc_bits": OB_GC_BITS, "PyObject.ob_ref_local": OB_REF_LOCAL,
    "PyObject.ob_ref_shared": OB_REF_SHARED, "PyObject.ob_type": OB_TYPE,
    "PyGC_Head.size": 0,  # no GC head in front of GC objects
}


def derive_table(gil: dict[str, int]) -> dict[str, int]:
    """A free-threaded table from the GIL table of the same minor (see the module docstring)."""
    table: dict[str, int] = {}
    for name, value in gil.items():
        if name.startswith("PyObject.ob_refcnt"):
            continue  # no single refcount word: reading one must fail loudly (Layout.refcount_fields)
        struct_name = name.split(".", 1)[0]
        table[name] = value + HEADER_GROWTH if struct_name in OBJECT_STRUCTS else value
    table.update(HEADER_FIELDS)
    return table


@dataclass(frozen=True)
class Header:
    ob_tid: int
    ob_flags: int
    ob_mutex: int
    ob_gc_bits: int
    ob_ref_local: int
    ob_ref_shared: int  # signed
    ob_type: int

    @classmethod
    def decode(cls, raw: bytes) -> Header:
        tid, flags, mutex, gc_bits, local, shared, tp = struct.unpack_from("<QHBBIqQ", raw, 0)
        return cls(tid, flags, mutex, gc_bits, local, shared, tp)

    @property
    def immortal(self) -> bool:
        """refcount.h _Py_IsImmortal (Py_GIL_DISABLED): ob_ref_local == UINT32_MAX."""
        return self.ob_ref_local == IMMORTAL_REFCNT_LOCAL

    @property
    def deferred(self) -> bool:
        return bool(self.ob_gc_bits & GC_DEFERRED)

    @property
    def tracked(self) -> bool:
        return bool(self.ob_gc_bits & GC_TRACKED)

    @property
    def shared_flag(self) -> str:
        return SHARED_FLAGS[self.ob_ref_shared & 3]

    def refcount(self, deferred_bias: tuple[int, int]) -> int:
        """Py_REFCNT, without the deferred-refcount bias (``deferred_bias``: (local, shared))."""
        if self.immortal:
            return IMMORTAL_INITIAL_REFCNT
        local, shared = self.ob_ref_local, self.ob_ref_shared
        if self.deferred:
            local, shared = local - deferred_bias[0], shared - deferred_bias[1]
        return local + (shared >> REF_SHARED_SHIFT)

    def facts(self) -> dict[str, object]:
        return {"ob_tid": self.ob_tid, "ob_ref_local": self.ob_ref_local, "ob_ref_shared": self.ob_ref_shared,
                "shared_flag": self.shared_flag, "ob_gc_bits": [name for bit, name in GC_BITS.items()
                                                               if self.ob_gc_bits & bit]}


def deferred_bias(minor: tuple[int, int]) -> tuple[int, int]:
    """(local, shared) that deferred reference counting adds to the raw fields: 3.13 +1 local;
    3.14+ ``_Py_REF_SHARED(_Py_REF_DEFERRED, 0)`` = ``_Py_REF_DEFERRED << 2`` shared (Objects/object.c
    _PyObject_SetDeferredRefcount), never ``_Py_REF_DEFERRED`` itself, whose low bits would read as flags."""
    return (1, 0) if minor <= (3, 13) else (0, REF_DEFERRED << REF_SHARED_SHIFT)


MIMALLOC_UNKNOWN = ("free-threaded build: the object lives in a mimalloc heap, whose pages pylife does not "
                    "read yet: cannot tell alive from freed")
