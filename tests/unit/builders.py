"""Lay out real CPython 3.8-3.13 object bytes inside a FakeTarget.

``FakePython(key)`` builds a fake process image of CPython ``key`` (e.g.
``(3, 12)``): the static builtin types, None/True/False, ``_PyRuntime`` with
one interpreter, its GC state and sysdict, ``Py_Version`` (3.11+) and the
``_Py_DebugOffsets`` header (3.13). Object builders then allocate and write
objects with the offsets of ``pylife.cpython.layouts_generated.TABLES``.

Semantics (state bits, lv_tag, dict keys, pre-headers, GC lists) follow the
CPython headers directly, independently of pylife's own decoders, so the tests
check pylife against CPython rather than against itself. Type flags, basic and
item sizes are the real values read from the installed interpreters
(``T.__flags__``, ``T.__basicsize__``, ``T.__itemsize__``).
"""

from __future__ import annotations

import copy
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from pylife.cpython.layouts_generated import DEBUG_OFFSETS, TABLES
from pylife.target import Module, TargetKind, ThreadInfo

from .fakes import PAGE, FakeTarget

LAYOUT_KEYS: list[tuple[int, int]] = sorted(TABLES)

# opcode.opmap of the installed interpreters, for the few instructions the tests execute.
OPCODES: dict[tuple[int, int], dict[str, int]] = {
    **{key: {"LOAD_FAST": 124, "BUILD_LIST": 103, "STORE_ATTR": 95} for key in ((3, 8), (3, 9), (3, 10), (3, 11), (3, 12))},
    (3, 13): {"LOAD_FAST": 85, "BUILD_LIST": 47, "STORE_ATTR": 108},
    (3, 14): {"LOAD_FAST": 84, "BUILD_LIST": 46, "STORE_ATTR": 110, "LOAD_FAST_BORROW": 86},
    (3, 15): {"LOAD_FAST": 83, "BUILD_LIST": 44, "STORE_ATTR": 109, "LOAD_FAST_BORROW": 85},
}
POOL_OVERHEAD = 48  # sizeof(struct pool_header) in Objects/obmalloc.c, all versions

# Include/object.h
TPFLAGS_INLINE_VALUES = 1 << 2
TPFLAGS_MANAGED_WEAKREF = 1 << 3
TPFLAGS_MANAGED_DICT = 1 << 4
TPFLAGS_HEAPTYPE = 1 << 9
TPFLAGS_BASETYPE = 1 << 10
TPFLAGS_READY = 1 << 12
TPFLAGS_HAVE_GC = 1 << 14
TPFLAGS_TYPE_SUBCLASS = 1 << 31

IMMORTAL_REFCNT = 0xFFFFFFFF  # 3.12/3.13 _Py_IMMORTAL_REFCNT
# 3.14+ refcount.h: _Py_IMMORTAL_INITIAL_REFCNT (3 << 30) in the 32-bit ob_refcnt; statics add
# _Py_STATIC_FLAG_BITS (5) in ob_flags (_Py_STATIC_IMMORTAL_INITIAL_REFCNT): sid's None reads 0x00050000c0000000.
IMMORTAL_INITIAL_REFCNT_3_14 = 0xC0000000
STATIC_IMMORTAL_WORD_3_14 = 0x0005_0000_C000_0000
STATIC_REFCNT_3_11 = 999_999_999  # 3.11 _PyObject_IMMORTAL_INIT (still counted)
DIGIT_BITS = 30

# (tp_flags, tp_basicsize, tp_itemsize) read from the installed 3.8.18 ... 3.13.0.
# "Foo" is `class Foo: pass`, "Slotted" is `class Slotted: __slots__ = ("a",)`.
TYPE_FACTS: dict[tuple[int, int], dict[str, tuple[int, int, int]]] = {
    (3, 8): {
        "type": (0x800C5400, 880, 40), "object": (0xC1400, 16, 0), "str": (0x100C1400, 80, 0),
        "int": (0x10C1400, 24, 4), "bool": (0x10C1000, 32, 4), "float": (0x41400, 24, 0),
        "bytes": (0x80C1400, 33, 1), "tuple": (0x40C5400, 24, 8), "list": (0x20C5400, 40, 0),
        "dict": (0x200C5400, 48, 0), "set": (0xC5400, 200, 0), "frozenset": (0xC5400, 200, 0),
        "function": (0xE5800, 120, 0), "code": (0x41000, 176, 0), "module": (0xC5400, 56, 0),
        "NoneType": (0xC1000, 16, 0), "Foo": (0x45600, 32, 0), "Slotted": (0x45600, 24, 0),
    },
    (3, 9): {
        "type": (0x800C5C00, 880, 40), "object": (0xC1400, 16, 0), "str": (0x100C1400, 80, 0),
        "int": (0x10C1400, 24, 4), "bool": (0x10C1000, 32, 4), "float": (0x41400, 24, 0),
        "bytes": (0x80C1400, 33, 1), "tuple": (0x40C5400, 24, 8), "list": (0x20C5400, 40, 0),
        "dict": (0x200C5400, 48, 0), "set": (0xC5400, 200, 0), "frozenset": (0xC5400, 200, 0),
        "function": (0xE5800, 120, 0), "code": (0x41000, 176, 0), "module": (0xC5400, 56, 0),
        "NoneType": (0xC1000, 16, 0), "Foo": (0x45600, 32, 0), "Slotted": (0x45600, 24, 0),
    },
    (3, 10): {
        "type": (0x80085D00, 888, 40), "object": (0x81500, 16, 0), "str": (0x10481500, 80, 0),
        "int": (0x1481500, 24, 4), "bool": (0x1481100, 32, 4), "float": (0x401500, 24, 0),
        "bytes": (0x8481500, 33, 1), "tuple": (0x4485520, 24, 8), "list": (0x2485520, 40, 0),
        "dict": (0x20485540, 48, 0), "set": (0x485500, 200, 0), "frozenset": (0x485500, 200, 0),
        "function": (0xA5900, 128, 0), "code": (0x1100, 176, 0), "module": (0x85500, 56, 0),
        "NoneType": (0x81100, 16, 0), "Foo": (0x5600, 32, 0), "Slotted": (0x5600, 24, 0),
    },
    (3, 11): {
        "type": (0x80085D00, 904, 40), "object": (0x81500, 16, 0), "str": (0x10481500, 80, 0),
        "int": (0x1481500, 24, 4), "bool": (0x1481100, 32, 4), "float": (0x401500, 24, 0),
        "bytes": (0x8481500, 33, 1), "tuple": (0x4485520, 24, 8), "list": (0x2485520, 40, 0),
        "dict": (0x20485540, 48, 0), "set": (0x485500, 200, 0), "frozenset": (0x485500, 200, 0),
        "function": (0xA5900, 136, 0), "code": (0x1100, 184, 2), "module": (0x85500, 56, 0),
        "NoneType": (0x81100, 16, 0), "Foo": (0x5610, 24, 0), "Slotted": (0x5600, 24, 0),
    },
    (3, 12): {
        "type": (0x80885D02, 920, 40), "object": (0x81502, 16, 0), "str": (0x10481502, 64, 0),
        "int": (0x1481502, 24, 4), "bool": (0x1481102, 24, 4), "float": (0x481502, 24, 0),
        "bytes": (0x8481502, 33, 1), "tuple": (0x4485522, 24, 8), "list": (0x2485522, 40, 0),
        "dict": (0x20485542, 48, 0), "set": (0x485502, 200, 0), "frozenset": (0x485502, 200, 0),
        "function": (0xA5902, 144, 0), "code": (0x81102, 192, 2), "module": (0x85502, 56, 0),
        "NoneType": (0x81102, 16, 0), "Foo": (0x5618, 16, 0), "Slotted": (0x5600, 24, 0),
    },
    (3, 13): {
        "type": (0x80805D02, 928, 40), "object": (0x1502, 16, 0), "str": (0x10401502, 64, 0),
        "int": (0x1401502, 24, 4), "bool": (0x1401102, 24, 4), "float": (0x401502, 24, 0),
        "bytes": (0x8401502, 33, 1), "tuple": (0x4405522, 24, 8), "list": (0x2405522, 40, 0),
        "dict": (0x20405542, 48, 0), "set": (0x405502, 200, 0), "frozenset": (0x405502, 200, 0),
        "function": (0x25902, 144, 0), "code": (0x1102, 200, 2), "module": (0x5502, 56, 0),
        "NoneType": (0x1102, 16, 0), "Foo": (0x561C, 16, 0), "Slotted": (0x5600, 24, 0),
    },
    (3, 14): {  # sid's 3.14.10: tuple caches its hash (ob_hash), function grows
        "type": (0x80805D02, 936, 40), "object": (0x1502, 16, 0), "str": (0x10401502, 64, 0),
        "int": (0x1401502, 24, 4), "bool": (0x1401102, 24, 4), "float": (0x401502, 24, 0),
        "bytes": (0x8401502, 33, 1), "tuple": (0x4405522, 32, 8), "list": (0x2405522, 40, 0),
        "dict": (0x20405542, 48, 0), "set": (0x405502, 200, 0), "frozenset": (0x405502, 200, 0),
        "function": (0x25902, 152, 0), "code": (0x1102, 208, 2), "module": (0x5502, 56, 0),
        "NoneType": (0x1102, 16, 0), "Foo": (0x561C, 16, 0), "Slotted": (0x5600, 24, 0),
    },
    (3, 15): {  # sid's 3.15.2
        "type": (0x80805D02, 944, 40), "object": (0x1502, 16, 0), "str": (0x10401502, 64, 0),
        "int": (0x1401502, 24, 4), "bool": (0x1401102, 24, 4), "float": (0x401502, 24, 0),
        "bytes": (0x8401502, 33, 1), "tuple": (0x4405522, 32, 8), "list": (0x2405522, 40, 0),
        "dict": (0x20405542, 48, 0), "set": (0x405502, 200, 0), "frozenset": (0x405502, 200, 0),
        "function": (0x25902, 152, 0), "code": (0x1102, 208, 2), "module": (0x5502, 104, 0),
        "NoneType": (0x1102, 16, 0), "Foo": (0x561C, 16, 0), "Slotted": (0x5600, 24, 0),
    },
}


@dataclass(frozen=True)
class Release:
    micro: int
    hexversion: int
    sys_version: str


RELEASES: dict[tuple[int, int], Release] = {
    (3, 8): Release(18, 0x030812F0, "3.8.18 (default, May  9 2026, 07:33:04) \n[GCC 12.2.0]"),
    (3, 9): Release(18, 0x030912F0, "3.9.18 (main, May  9 2026, 07:33:49) \n[GCC 12.2.0]"),
    (3, 10): Release(13, 0x030A0DF0, "3.10.13 (main, May  9 2026, 07:34:36) [GCC 12.2.0]"),
    (3, 11): Release(7, 0x030B07F0, "3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]"),
    (3, 12): Release(1, 0x030C01F0, "3.12.1 (main, May  9 2026, 07:36:11) [GCC 12.2.0]"),
    (3, 13): Release(0, 0x030D00F0, "3.13.0 (main, May  9 2026, 07:36:57) [GCC 12.2.0]"),
    (3, 14): Release(10, 0x030E0AF0, "3.14.10 (main, Oct 26 2026, 15:12:11) [GCC 16.2.0]"),
    (3, 15): Release(2, 0x030F02F0, "3.15.2 (main, Oct 26 2026, 15:10:10) [GCC 16.2.0]"),
}

# `p _PyRuntime.debug_offsets` on the installed libpython3.13.so.1.0 (3.13.0),
# every uint64 after the 24-byte header, in struct order
# (Include/internal/pycore_runtime.h).
DEBUG_OFFSETS_3_13_0: list[tuple[str, list[tuple[str, int]]]] = [
    ("runtime_state", [("size", 283320), ("finalizing", 608), ("interpreters_head", 632)]),
    ("interpreter_state", [("size", 194968), ("id", 7272), ("next", 7264), ("threads_head", 7344), ("gc", 7400),
                           ("imports_modules", 7656), ("sysdict", 7640), ("builtins", 7648), ("ceval_gil", 16),
                           ("gil_runtime_state", 7752), ("gil_runtime_state_enabled", 0),
                           ("gil_runtime_state_locked", 7768), ("gil_runtime_state_holder", 7760)]),
    ("thread_state", [("size", 304), ("prev", 0), ("next", 8), ("interp", 16), ("current_frame", 72),
                      ("thread_id", 152), ("native_thread_id", 160), ("datastack_chunk", 232), ("status", 32)]),
    ("interpreter_frame", [("size", 80), ("previous", 8), ("executable", 0), ("instr_ptr", 56),
                           ("localsplus", 72), ("owner", 70)]),
    ("code_object", [("size", 208), ("filename", 112), ("name", 120), ("qualname", 128), ("linetable", 136),
                     ("firstlineno", 68), ("argcount", 52), ("localsplusnames", 96), ("localspluskinds", 104),
                     ("co_code_adaptive", 200)]),
    ("pyobject", [("size", 16), ("ob_type", 8)]),
    ("type_object", [("size", 416), ("tp_name", 24), ("tp_repr", 88), ("tp_flags", 168)]),
    ("tuple_object", [("size", 32), ("ob_item", 24), ("ob_size", 16)]),
    ("list_object", [("size", 40), ("ob_item", 24), ("ob_size", 16)]),
    ("dict_object", [("size", 48), ("ma_keys", 32), ("ma_values", 40)]),
    ("float_object", [("size", 24), ("ob_fval", 16)]),
    ("long_object", [("size", 32), ("lv_tag", 16), ("ob_digit", 24)]),
    ("bytes_object", [("size", 40), ("ob_size", 16), ("ob_sval", 32)]),
    ("unicode_object", [("size", 64), ("state", 32), ("length", 16), ("asciiobject_size", 40)]),
    ("gc", [("size", 240), ("collecting", 200)]),
]
# `p _PyRuntime.debug_offsets` on Debian sid's python3.14 (3.14.10) and python3.15
# (3.15.2), read by the sid root's gdb 18 (scripts/make_sid_root.sh): every
# entry after the header, by its C name. Where each sits in the struct is
# layouts_generated.DEBUG_OFFSETS.
DEBUG_OFFSETS_VALUES: dict[tuple[int, int], dict[str, int]] = {
    (3, 13): {f"{group}.{name}": value for group, fields in DEBUG_OFFSETS_3_13_0 for name, value in fields},
    (3, 14): {
        "runtime_state.size": 316616, "runtime_state.finalizing": 784, "runtime_state.interpreters_head": 808,
        "interpreter_state.size": 225864, "interpreter_state.id": 7280, "interpreter_state.next": 7272,
        "interpreter_state.threads_head": 7344, "interpreter_state.threads_main": 7360, "interpreter_state.gc":
        7408, "interpreter_state.imports_modules": 7688, "interpreter_state.sysdict": 7672,
        "interpreter_state.builtins": 7680, "interpreter_state.ceval_gil": 16,
        "interpreter_state.gil_runtime_state": 7784, "interpreter_state.gil_runtime_state_enabled": 0,
        "interpreter_state.gil_runtime_state_locked": 7800, "interpreter_state.gil_runtime_state_holder": 7792,
        "interpreter_state.code_object_generation": 7992, "interpreter_state.tlbc_generation": 0,
        "thread_state.size": 832, "thread_state.prev": 0, "thread_state.next": 8, "thread_state.interp": 16,
        "thread_state.current_frame": 72, "thread_state.thread_id": 152, "thread_state.native_thread_id": 160,
        "thread_state.datastack_chunk": 232, "thread_state.status": 32, "interpreter_frame.size": 88,
        "interpreter_frame.previous": 8, "interpreter_frame.executable": 0, "interpreter_frame.instr_ptr": 56,
        "interpreter_frame.localsplus": 80, "interpreter_frame.owner": 74, "interpreter_frame.stackpointer": 64,
        "interpreter_frame.tlbc_index": 0, "code_object.size": 216, "code_object.filename": 112, "code_object.name":
        120, "code_object.qualname": 128, "code_object.linetable": 136, "code_object.firstlineno": 68,
        "code_object.argcount": 52, "code_object.localsplusnames": 96, "code_object.localspluskinds": 104,
        "code_object.co_code_adaptive": 208, "code_object.co_tlbc": 0, "pyobject.size": 16, "pyobject.ob_type": 8,
        "type_object.size": 416, "type_object.tp_name": 24, "type_object.tp_repr": 88, "type_object.tp_flags": 168,
        "tuple_object.size": 40, "tuple_object.ob_item": 32, "tuple_object.ob_size": 16, "list_object.size": 40,
        "list_object.ob_item": 24, "list_object.ob_size": 16, "set_object.size": 200, "set_object.used": 24,
        "set_object.table": 40, "set_object.mask": 32, "dict_object.size": 48, "dict_object.ma_keys": 32,
        "dict_object.ma_values": 40, "float_object.size": 24, "float_object.ob_fval": 16, "long_object.size": 32,
        "long_object.lv_tag": 16, "long_object.ob_digit": 24, "bytes_object.size": 40, "bytes_object.ob_size": 16,
        "bytes_object.ob_sval": 32, "unicode_object.size": 64, "unicode_object.state": 32, "unicode_object.length":
        16, "unicode_object.asciiobject_size": 40, "gc.size": 264, "gc.collecting": 192, "gen_object.size": 160,
        "gen_object.gi_name": 24, "gen_object.gi_iframe": 72, "gen_object.gi_frame_state": 67, "llist_node.next": 0,
        "llist_node.prev": 8, "debugger_support.eval_breaker": 24, "debugger_support.remote_debugger_support": 304,
        "debugger_support.remote_debugging_enabled": 8076, "debugger_support.debugger_pending_call": 0,
        "debugger_support.debugger_script_path": 4, "debugger_support.debugger_script_path_size": 512
    },
    (3, 15): {
        "runtime_state.size": 346568, "runtime_state.finalizing": 912, "runtime_state.interpreters_head": 936,
        "interpreter_state.size": 226240, "interpreter_state.id": 7272, "interpreter_state.next": 7264,
        "interpreter_state.threads_head": 7336, "interpreter_state.threads_main": 7352, "interpreter_state.gc":
        7400, "interpreter_state.imports_modules": 7592, "interpreter_state.sysdict": 7576,
        "interpreter_state.builtins": 7584, "interpreter_state.ceval_gil": 16,
        "interpreter_state.gil_runtime_state": 7736, "interpreter_state.gil_runtime_state_enabled": 0,
        "interpreter_state.gil_runtime_state_locked": 7752, "interpreter_state.gil_runtime_state_holder": 7744,
        "interpreter_state.code_object_generation": 7944, "interpreter_state.tlbc_generation": 0,
        "thread_state.size": 888, "thread_state.prev": 0, "thread_state.next": 8, "thread_state.interp": 16,
        "thread_state.current_frame": 72, "thread_state.base_frame": 80, "thread_state.last_profiled_frame": 88,
        "thread_state.last_profiled_frame_seq": 96, "thread_state.thread_id": 176, "thread_state.native_thread_id":
        184, "thread_state.datastack_chunk": 256, "thread_state.status": 32, "thread_state.holds_gil": 36,
        "thread_state.gil_requested": 40, "thread_state.current_exception": 136, "thread_state.exc_state": 288,
        "err_stackitem.exc_value": 0, "interpreter_frame.size": 88, "interpreter_frame.previous": 8,
        "interpreter_frame.executable": 0, "interpreter_frame.instr_ptr": 56, "interpreter_frame.localsplus": 80,
        "interpreter_frame.owner": 74, "interpreter_frame.stackpointer": 64, "interpreter_frame.tlbc_index": 0,
        "code_object.size": 216, "code_object.filename": 112, "code_object.name": 120, "code_object.qualname": 128,
        "code_object.linetable": 136, "code_object.firstlineno": 68, "code_object.argcount": 52,
        "code_object.localsplusnames": 96, "code_object.localspluskinds": 104, "code_object.co_code_adaptive": 208,
        "code_object.co_tlbc": 0, "pyobject.size": 16, "pyobject.ob_type": 8, "type_object.size": 424,
        "type_object.tp_name": 24, "type_object.tp_repr": 88, "type_object.tp_flags": 168,
        "type_object.tp_basicsize": 32, "type_object.tp_dictoffset": 288, "heap_type_object.size": 944,
        "heap_type_object.ht_cached_keys": 888, "tuple_object.size": 40, "tuple_object.ob_item": 32,
        "tuple_object.ob_size": 16, "list_object.size": 40, "list_object.ob_item": 24, "list_object.ob_size": 16,
        "set_object.size": 200, "set_object.used": 24, "set_object.table": 40, "set_object.mask": 32,
        "dict_object.size": 48, "dict_object.ma_keys": 32, "dict_object.ma_values": 40, "float_object.size": 24,
        "float_object.ob_fval": 16, "long_object.size": 32, "long_object.lv_tag": 16, "long_object.ob_digit": 24,
        "bytes_object.size": 40, "bytes_object.ob_size": 16, "bytes_object.ob_sval": 32, "unicode_object.size": 64,
        "unicode_object.state": 32, "unicode_object.length": 16, "unicode_object.asciiobject_size": 40,
        "unicode_object.compactunicodeobject_size": 56, "gc.size": 176, "gc.collecting": 112, "gc.frame": 120,
        "gc.generation_stats_size": 1120, "gc.generation_stats": 104, "gen_object.size": 160, "gen_object.gi_name":
        24, "gen_object.gi_iframe": 72, "gen_object.gi_frame_state": 67, "llist_node.next": 0, "llist_node.prev": 8,
        "debugger_support.eval_breaker": 24, "debugger_support.remote_debugger_support": 344,
        "debugger_support.remote_debugging_enabled": 8028, "debugger_support.debugger_pending_call": 0,
        "debugger_support.debugger_script_path": 4, "debugger_support.debugger_script_path_size": 512
    },
}
DEBUG_OFFSETS_HEADER = 24

STATIC_BASE = 0x7F00_0000_0000  # "libpython .data": static types, _PyRuntime, singletons
HEAP_BASE = 0x7F40_0000_0000  # "malloc/pymalloc": everything allocated at run time
RUNTIME_SIZE = 0x1000
INTERP_SIZE = 0x2000
GC_STATE_SIZE = 240
SET_SMALLTABLE = 64  # offsetof(PySetObject, smalltable) in 3.8-3.13
SET_MINSIZE = 8
LINEAR_PROBES = 9
PERTURB_SHIFT = 5


class Arena:
    """A bump allocator that maps contiguous pages of the fake image on demand."""

    def __init__(self, target: FakeTarget, base: int, chunk: int = 0x10000) -> None:
        self.target = target
        self.base = base
        self.cursor = base
        self.end = base
        self.chunk = chunk

    def alloc(self, size: int, align: int = 16) -> int:
        start = -(-self.cursor // align) * align
        stop = start + max(size, 1)
        if stop > self.end:
            grow = max(self.chunk, -(-(stop - self.end) // PAGE) * PAGE)
            self.target.map(self.end, grow)
            self.end += grow
        self.cursor = stop
        return start

    def skip_pages(self, count: int = 1) -> int:
        """Leave an unmapped hole; returns the address of the first hole byte."""
        hole = -(-self.cursor // PAGE) * PAGE
        if hole < self.end:
            hole = self.end
        self.cursor = self.end = hole + count * PAGE
        return hole


def _digits(value: int) -> list[int]:
    value = abs(value)
    out = []
    while value:
        out.append(value & ((1 << DIGIT_BITS) - 1))
        value >>= DIGIT_BITS
    return out


class FakePython:
    """A fake CPython ``key`` process image, plus builders for its objects."""

    def __init__(
        self,
        key: tuple[int, int],
        *,
        kind: TargetKind = TargetKind.LIVE,
        runtime: bool = True,
        libpython: bool = True,
        py_version: bool = True,
        debug_offsets: bool = True,
        sys_version: str | None = None,
    ) -> None:
        self.key = key
        self.off = TABLES[key]
        self.facts = TYPE_FACTS[key]
        self.release = RELEASES[key]
        self.target = FakeTarget(kind)
        self.target.map(0x1000, PAGE)  # a low page, so address 0x1000 is readable zeros
        self.static = Arena(self.target, STATIC_BASE)
        self.heap = Arena(self.target, HEAP_BASE)
        self.type_flags: dict[int, int] = {}
        self.kinds: dict[int, str] = {}  # object address -> builtin kind, for objects built here
        self.types: dict[str, int] = {}
        self.gc_states: list[int] = []
        major, minor = key
        prefix = f"/root/.pyenv/versions/{major}.{minor}.{self.release.micro}"
        executable = f"{prefix}/bin/python{major}.{minor}"
        self.target.module_list.append(Module(executable, 0))
        if libpython:
            self.target.module_list.append(Module(f"{prefix}/lib/libpython{major}.{minor}.so.1.0", 0x7F00_0000_0000))
        self.target.module_list.append(Module("/lib/x86_64-linux-gnu/libc.so.6", 0x7E00_0000_0000))
        self._build_types()
        self.none = self._static_object("NoneType", 16)
        self.true = self._static_int(1, "bool")
        self.false = self._static_int(0, "bool")
        self.dummy_type = self.static_type("<dummy key> type", flags=TPFLAGS_READY, basicsize=16, itemsize=0)
        self.set_dummy = self._static_object("<dummy key> type", 16)
        self.runtime = 0
        self.interp = 0
        if runtime:
            self._build_runtime(py_version, debug_offsets,
                                sys_version if sys_version is not None else self.release.sys_version)

    @classmethod
    def fresh(cls, key: tuple[int, int]) -> FakePython:
        """A default image for ``key``: a copy of one built once (building takes longer than copying)."""
        template = _TEMPLATES.get(key)
        if template is None:
            template = _TEMPLATES[key] = cls(key)
        return template.clone()

    def clone(self) -> FakePython:
        twin = copy.copy(self)
        twin.target = self.target.clone()
        for name in ("static", "heap"):
            arena = copy.copy(getattr(self, name))
            arena.target = twin.target
            setattr(twin, name, arena)
        twin.type_flags = dict(self.type_flags)
        twin.kinds = dict(self.kinds)
        twin.types = dict(self.types)
        twin.gc_states = list(self.gc_states)
        return twin

    # ---- small helpers ---------------------------------------------------------

    @property
    def t(self) -> FakeTarget:
        return self.target

    def o(self, name: str) -> int:
        return self.off[name]

    def managed_mask(self) -> int:
        """Py_TPFLAGS that imply a pre-header (pycore_object.h _PyType_PreHeaderSize)."""
        if self.key >= (3, 12):
            return TPFLAGS_MANAGED_DICT | TPFLAGS_MANAGED_WEAKREF
        if self.key >= (3, 11):
            return TPFLAGS_MANAGED_DICT
        return 0

    def immortal_refcnt(self) -> int:
        """The refcount an immortal object reads as (3.12+)."""
        return IMMORTAL_INITIAL_REFCNT_3_14 if self.key >= (3, 14) else IMMORTAL_REFCNT

    def static_refcnt(self) -> int:
        """The first word of a statically allocated object."""
        if self.key >= (3, 14):
            return STATIC_IMMORTAL_WORD_3_14
        if self.key >= (3, 12):
            return IMMORTAL_REFCNT
        if self.key >= (3, 11):
            return STATIC_REFCNT_3_11
        return 1000

    def cstring(self, text: bytes, *, arena: Arena | None = None) -> int:
        address = (arena or self.static).alloc(len(text) + 1, align=8)
        self.t.write(address, text + b"\0")
        return address

    def _header(self, obj: int, type_address: int, refcnt: int) -> None:
        self.t.write_i64(obj + self.o("PyObject.ob_refcnt"), refcnt)
        self.t.write_u64(obj + self.o("PyObject.ob_type"), type_address)

    def new_object(
        self,
        type_address: int,
        size: int,
        *,
        refcnt: int = 1,
        generation: int | None = 0,
        arena: Arena | None = None,
    ) -> int:
        """Allocate ``size`` object bytes plus the pre-header the type asks for."""
        flags = self.type_flags.get(type_address, 0)
        gc = bool(flags & TPFLAGS_HAVE_GC)
        pre = (16 if gc else 0) + (16 if flags & self.managed_mask() else 0)
        block = (arena or self.heap).alloc(pre + size)
        obj = block + pre
        self._header(obj, type_address, refcnt)
        if gc and generation is not None:
            self.gc_track(obj, generation)
        return obj

    # ---- types -----------------------------------------------------------------

    def static_type(
        self,
        name: str,
        *,
        flags: int,
        basicsize: int,
        itemsize: int,
        metatype: int | None = None,
        tp_name: int | None = None,
    ) -> int:
        address = self.static.alloc(self.o("PyTypeObject.size"))
        self._header(address, metatype or self.types.get("type", address), self.static_refcnt())
        self.t.write_u64(address + self.o("PyTypeObject.tp_name"),
                         tp_name if tp_name is not None else self.cstring(name.encode()))
        self.t.write_i64(address + self.o("PyTypeObject.tp_basicsize"), basicsize)
        self.t.write_i64(address + self.o("PyTypeObject.tp_itemsize"), itemsize)
        self.t.write_u64(address + self.o("PyTypeObject.tp_flags"), flags)
        if "object" in self.types:
            self.t.write_u64(address + self.o("PyTypeObject.tp_base"), self.types["object"])
        self.type_flags[address] = flags
        return address

    def _build_types(self) -> None:
        flags, basic, item = self.facts["type"]
        self.types["type"] = self.static_type("type", flags=flags, basicsize=basic, itemsize=item)
        for name in ("object", "str", "int", "bool", "float", "bytes", "tuple", "list", "dict", "set",
                     "frozenset", "function", "code", "module", "NoneType"):
            flags, basic, item = self.facts[name]
            self.types[name] = self.static_type(name, flags=flags, basicsize=basic, itemsize=item)
        for address in self.types.values():
            self.kinds[address] = "type"

    def heap_type(
        self,
        name: str,
        module: str = "mod",
        *,
        qualname: str | None = None,
        flags: int | None = None,
        basicsize: int | None = None,
        itemsize: int = 0,
        metatype: int | None = None,
        generation: int | None = 0,
    ) -> int:
        """A class statement's type: a GC'd PyHeapTypeObject with ht_qualname and __module__."""
        foo_flags, foo_basic, _ = self.facts["Foo"]
        _type_flags, heap_type_size, _ = self.facts["type"]
        meta = metatype or self.types["type"]
        address = self.new_object(meta, heap_type_size, refcnt=5, generation=generation)
        self.kinds[address] = "type"
        flags = foo_flags if flags is None else flags
        self.t.write_u64(address + self.o("PyTypeObject.tp_name"), self.cstring(name.encode(), arena=self.heap))
        self.t.write_i64(address + self.o("PyTypeObject.tp_basicsize"), foo_basic if basicsize is None else basicsize)
        self.t.write_i64(address + self.o("PyTypeObject.tp_itemsize"), itemsize)
        self.t.write_u64(address + self.o("PyTypeObject.tp_flags"), flags)
        self.t.write_u64(address + self.o("PyTypeObject.tp_base"), self.types["object"])
        tp_dict = self.dict([(self.str("__module__"), self.str(module)), (self.str("__doc__"), self.none)])
        self.t.write_u64(address + self.o("PyTypeObject.tp_dict"), tp_dict)
        self.t.write_u64(address + self.o("PyHeapTypeObject.ht_name"), self.str(name))
        self.t.write_u64(address + self.o("PyHeapTypeObject.ht_qualname"), self.str(qualname or name))
        self.type_flags[address] = flags
        return address

    def instance(self, type_address: int, *, refcnt: int = 1, generation: int | None = 0) -> int:
        basicsize = struct.unpack("<q", self.t.read(type_address + self.o("PyTypeObject.tp_basicsize"), 8))[0]
        return self.new_object(type_address, basicsize, refcnt=refcnt, generation=generation)

    # ---- singletons ------------------------------------------------------------

    def _static_object(self, type_name: str, size: int) -> int:
        type_address = self.types.get(type_name)
        if type_address is None:
            type_address = next(a for a in self.type_flags if self._type_name(a) == type_name)
        address = self.static.alloc(size)
        self._header(address, type_address, self.static_refcnt())
        self.kinds[address] = type_name
        return address

    def _type_name(self, type_address: int) -> str:
        pointer = self.t.peek_u64(type_address + self.o("PyTypeObject.tp_name"))
        raw = self.t.read(pointer, 64)
        return raw.split(b"\0", 1)[0].decode()

    def _static_int(self, value: int, type_name: str) -> int:
        address = self._int_object(value, self.types[type_name], self.static_refcnt(), self.static)
        self.kinds[address] = type_name
        return address

    # ---- scalars ---------------------------------------------------------------

    def str(
        self,
        value: str,
        *,
        legacy: bool = False,
        interned: int = 0,
        refcnt: int = 1,
        arena: Arena | None = None,
    ) -> int:
        """A ready str: compact ascii / compact latin1/UCS2/UCS4, or legacy (separate data)."""
        maxchar = max((ord(c) for c in value), default=0)
        kind = 1 if maxchar < 0x100 else 2 if maxchar < 0x10000 else 4
        is_ascii = maxchar < 0x80
        codec = {1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}[kind]
        data = value.encode(codec, "surrogatepass") + b"\0" * kind
        state = interned | (kind << 2) | (0 if legacy else 1 << 5) | (int(is_ascii) << 6)
        if self.key <= (3, 11):
            state |= 1 << 7  # ready (removed by PEP 623 in 3.12)
        str_type = self.types["str"]
        if legacy:
            obj = self.new_object(str_type, self.facts["str"][1], refcnt=refcnt, arena=arena)
            buffer = (arena or self.heap).alloc(len(data))
            self.t.write(buffer, data)
            self.t.write_u64(obj + self.o("PyUnicodeObject.data"), buffer)
        else:
            header = self.o("PyASCIIObject.size") if is_ascii else self.o("PyCompactUnicodeObject.size")
            obj = self.new_object(str_type, header + len(data), refcnt=refcnt, arena=arena)
            self.t.write(obj + header, data)
        self.t.write_i64(obj + self.o("PyASCIIObject.length"), len(value))
        self.t.write_i64(obj + 24, hash(value))  # PyASCIIObject.hash
        self.t.write_u32(obj + self.o("PyASCIIObject.state"), state)
        self.kinds[obj] = "str"
        return obj

    def _int_object(self, value: int, type_address: int, refcnt: int, arena: Arena | None) -> int:
        digits = _digits(value)
        allocated = max(len(digits), 1) if self.key >= (3, 11) else len(digits)
        obj = self.new_object(type_address, self.o("PyLongObject.ob_digit") + 4 * allocated,
                              refcnt=refcnt, arena=arena)
        if self.key >= (3, 12):
            sign = 0 if value > 0 else 1 if value == 0 else 2  # longintrepr.h SIGN_MASK values
            self.t.write_u64(obj + self.o("PyLongObject.lv_tag"), (len(digits) << 3) | sign)
        else:
            self.t.write_i64(obj + self.o("PyVarObject.ob_size"), len(digits) * (1 if value >= 0 else -1))
        for i, digit in enumerate(digits):
            self.t.write_u32(obj + self.o("PyLongObject.ob_digit") + 4 * i, digit)
        return obj

    def int(self, value: int, *, refcnt: int = 1) -> int:
        obj = self._int_object(value, self.types["int"], refcnt, None)
        self.kinds[obj] = "int"
        return obj

    def bool(self, value: bool) -> int:
        return self.true if value else self.false

    def float(self, value: float, *, refcnt: int = 1) -> int:
        obj = self.new_object(self.types["float"], 24, refcnt=refcnt)
        self.t.write_f64(obj + self.o("PyFloatObject.ob_fval"), value)
        self.kinds[obj] = "float"
        return obj

    def bytes(self, value: bytes, *, refcnt: int = 1) -> int:
        obj = self.new_object(self.types["bytes"], self.facts["bytes"][1] + len(value), refcnt=refcnt)
        self.t.write_i64(obj + self.o("PyVarObject.ob_size"), len(value))
        self.t.write_i64(obj + 24, -1)  # ob_shash
        self.t.write(obj + self.o("PyBytesObject.ob_sval"), value + b"\0")
        self.kinds[obj] = "bytes"
        return obj

    # ---- containers ----------------------------------------------------------------

    def tuple(self, items: Sequence[int], *, refcnt: int = 1, generation: int | None = 0) -> int:
        size = self.o("PyTupleObject.ob_item") + 8 * len(items)  # 3.14+: ob_hash before the items
        obj = self.new_object(self.types["tuple"], size, refcnt=refcnt, generation=generation)
        self.t.write_i64(obj + self.o("PyVarObject.ob_size"), len(items))
        if self.key >= (3, 14):
            self.t.write_i64(obj + 24, -1)  # tupleobject.c: ob_hash starts as -1 (not computed yet)
        for i, item in enumerate(items):
            self.t.write_u64(obj + self.o("PyTupleObject.ob_item") + 8 * i, item)
        self.kinds[obj] = "tuple"
        return obj

    def list(
        self,
        items: Sequence[int],
        *,
        allocated: int | None = None,
        refcnt: int = 1,
        generation: int | None = 0,
    ) -> int:
        obj = self.new_object(self.types["list"], self.facts["list"][1], refcnt=refcnt, generation=generation)
        allocated = len(items) if allocated is None else allocated
        buffer = self.heap.alloc(8 * allocated) if allocated else 0
        for i, item in enumerate(items):
            self.t.write_u64(buffer + 8 * i, item)
        self.t.write_i64(obj + self.o("PyVarObject.ob_size"), len(items))
        self.t.write_u64(obj + self.o("PyListObject.ob_item"), buffer)
        self.t.write_i64(obj + self.o("PyListObject.allocated"), allocated)
        self.kinds[obj] = "list"
        return obj

    def list_set(self, lst: int, index: int, item: int) -> None:
        buffer = self.t.peek_u64(lst + self.o("PyListObject.ob_item"))
        self.t.write_u64(buffer + 8 * index, item)

    def _index_width(self, log2_size: int) -> int:
        # dict-common.h DK_IXSIZE (<=3.10) and pycore_dict.h (3.11+) agree on these.
        size = 1 << log2_size
        return 1 if size <= 0xFF else 2 if size <= 0xFFFF else 4 if size <= 0xFFFFFFFF else 8

    def dict(
        self,
        items: Sequence[tuple[int, int]],
        *,
        hashes: Sequence[int] | None = None,
        log2_size: int | None = None,
        unicode: bool | None = None,
        split: bool = False,
        deleted: Sequence[int] = (),
        refcnt: int = 1,
        generation: int | None = 0,
    ) -> int:
        """A dict; ``deleted`` lists entry positions left as tombstones (NULL key and value)."""
        entries: list[tuple[int, int, int] | None] = []
        hashes = list(hashes) if hashes is not None else [0x1234_5678 + 97 * i for i in range(len(items))]
        pending = list(zip(hashes, items))
        position = 0
        while pending or position in deleted:
            if position in deleted:
                entries.append(None)
            else:
                h, (k, v) = pending.pop(0)
                entries.append((h, k, v))
            position += 1
        n = len(entries)
        if log2_size is None:
            log2_size = 3
            while (2 << log2_size) // 3 < n:  # USABLE_FRACTION
                log2_size += 1
        size = 1 << log2_size
        width = self._index_width(log2_size)
        if unicode is None:
            unicode = all(self.kinds.get(k) == "str" for k, _v in items)
        log2 = "PyDictKeysObject.dk_log2_size" in self.off  # 3.11+ pycore_dict.h
        entry_size = 16 if log2 and (unicode or split) else 24  # PyDictUnicodeEntry / PyDictKeyEntry
        indices_off = self.o("PyDictKeysObject.dk_indices")
        keys = self.heap.alloc(indices_off + size * width + n * entry_size)
        self.t.write_i64(keys, 1)  # dk_refcnt
        if log2:
            self.t.write_u8(keys + self.o("PyDictKeysObject.dk_log2_size"), log2_size)
            self.t.write_u8(keys + self.o("PyDictKeysObject.dk_log2_index_bytes"), int(math.log2(size * width)))
            self.t.write_u8(keys + self.o("PyDictKeysObject.dk_kind"), 2 if split else 1 if unicode else 0)
            self.t.write_i64(keys + 16, (2 * size) // 3 - n)  # dk_usable
        else:
            self.t.write_i64(keys + self.o("PyDictKeysObject.dk_size"), size)
            self.t.write_u64(keys + 16, 0x7F00_DEAD_0000)  # dk_lookup: a function pointer
            self.t.write_i64(keys + 24, (2 * size) // 3 - n)  # dk_usable
        self.t.write_i64(keys + self.o("PyDictKeysObject.dk_nentries"), n)
        # The hash index: CPython's probe sequence (dictobject.c), -1 = DKIX_EMPTY.
        index = [-1] * size
        for position, entry in enumerate(entries):
            if entry is None:
                continue
            perturb = entry[0] & ((1 << 64) - 1)
            slot = perturb & (size - 1)
            while index[slot] != -1:
                perturb >>= PERTURB_SHIFT
                slot = (slot * 5 + perturb + 1) & (size - 1)
            index[slot] = position
        fmt = {1: "b", 2: "h", 4: "i", 8: "q"}[width]
        self.t.write(keys + indices_off, struct.pack(f"<{size}{fmt}", *index))
        base = keys + indices_off + size * width
        values = 0
        if split:
            values_off = self.off.get("PyDictValues.values", 0)
            prefix = 8 if self.key in ((3, 11), (3, 12)) else 0  # insertion-order prefix bytes
            block = self.heap.alloc(prefix + values_off + 8 * size)
            values = block + prefix
            if prefix:
                self.t.write_u8(values - 1, prefix)
                for i in range(min(n, prefix - 1)):
                    self.t.write_u8(values - 2 - i, i)
            elif values_off:
                self.t.write(values, bytes([size, n, 0, 1]))  # capacity, size, embedded, valid
        for position, entry in enumerate(entries):
            at = base + position * entry_size
            if entry is None:
                continue
            h, k, v = entry
            if entry_size == 24:
                self.t.write_i64(at, h)
                self.t.write_u64(at + 8, k)
                self.t.write_u64(at + 16, 0 if split else v)
            else:
                self.t.write_u64(at, k)
                self.t.write_u64(at + 8, 0 if split else v)
            if split:
                self.t.write_u64(values + self.off.get("PyDictValues.values", 0) + 8 * position, v)
        obj = self.new_object(self.types["dict"], self.facts["dict"][1], refcnt=refcnt, generation=generation)
        self.t.write_i64(obj + self.o("PyDictObject.ma_used"), len(items))
        self.t.write_u64(obj + self.o("PyDictObject.ma_keys"), keys)
        self.t.write_u64(obj + self.o("PyDictObject.ma_values"), values)
        self.kinds[obj] = "dict"
        return obj

    def set(
        self,
        keys: Sequence[int],
        *,
        hashes: Sequence[int] | None = None,
        frozen: bool = False,
        mask: int | None = None,
        dummies: int = 0,
        refcnt: int = 1,
        generation: int | None = 0,
    ) -> int:
        """A set/frozenset laid out with CPython's probing (setobject.c set_add_entry)."""
        hashes = list(hashes) if hashes is not None else [0x5151 + 131 * i for i in range(len(keys))]
        fill = len(keys) + dummies
        if mask is None:
            mask = SET_MINSIZE - 1
            while fill * 5 >= mask * 3:
                mask = mask * 2 + 1
        kind = "frozenset" if frozen else "set"
        obj = self.new_object(self.types[kind], self.facts[kind][1], refcnt=refcnt, generation=generation)
        table = obj + SET_SMALLTABLE if mask == SET_MINSIZE - 1 else self.heap.alloc(16 * (mask + 1))
        slots: list[tuple[int, int] | None] = [None] * (mask + 1)
        for key, h in zip(keys, hashes):
            slots[self._probe(slots, h, mask)] = (key, h)
        for _ in range(dummies):
            slots[self._probe(slots, 0x7777, mask)] = (self.set_dummy, -1)
        for i, slot in enumerate(slots):
            if slot is not None:
                self.t.write_u64(table + 16 * i, slot[0])
                self.t.write_i64(table + 16 * i + 8, slot[1])
        self.t.write_i64(obj + self.o("PySetObject.fill"), fill)
        self.t.write_i64(obj + self.o("PySetObject.used"), len(keys))
        self.t.write_i64(obj + self.o("PySetObject.mask"), mask)
        self.t.write_u64(obj + self.o("PySetObject.table"), table)
        self.t.write_i64(obj + 48, -1)  # hash
        self.kinds[obj] = kind
        return obj

    @staticmethod
    def _probe(slots: Sequence[tuple[int, int] | None], h: int, mask: int) -> int:
        perturb = h & ((1 << 64) - 1)
        i = perturb & mask
        while True:
            probes = LINEAR_PROBES if i + LINEAR_PROBES <= mask else 0
            for j in range(probes + 1):
                if slots[i + j] is None:
                    return i + j
            perturb >>= PERTURB_SHIFT
            i = (i * 5 + 1 + perturb) & mask

    # ---- functions, code, modules --------------------------------------------------

    def code(self, name: str, filename: str, firstlineno: int, *, qualname: str | None = None,
             code_units: int = 4) -> int:
        _flags, basic, item = self.facts["code"]
        obj = self.new_object(self.types["code"], basic + item * code_units)
        if item:
            self.t.write_i64(obj + self.o("PyVarObject.ob_size"), code_units)
        self.t.write_i32(obj + self.o("PyCodeObject.co_flags"), 0x3)  # CO_OPTIMIZED | CO_NEWLOCALS
        self.t.write_i32(obj + self.o("PyCodeObject.co_firstlineno"), firstlineno)
        self.t.write_u64(obj + self.o("PyCodeObject.co_filename"), self.str(filename))
        self.t.write_u64(obj + self.o("PyCodeObject.co_name"), self.str(name))
        if "PyCodeObject.co_qualname" in self.off:
            self.t.write_u64(obj + self.o("PyCodeObject.co_qualname"), self.str(qualname or name))
        self.kinds[obj] = "code"
        return obj

    def function(self, qualname: str, *, code: int | None = None, module: str = "mod") -> int:
        name = qualname.rsplit(".", 1)[-1]
        code = code or self.code(name, "/src/mod.py", 1, qualname=qualname)
        obj = self.new_object(self.types["function"], self.facts["function"][1])
        self.t.write_u64(obj + self.o("PyFunctionObject.func_code"), code)
        self.t.write_u64(obj + self.o("PyFunctionObject.func_name"), self.str(name))
        self.t.write_u64(obj + self.o("PyFunctionObject.func_qualname"), self.str(qualname))
        self.t.write_u64(obj + self.o("PyFunctionObject.func_module"), self.str(module))
        self.kinds[obj] = "function"
        return obj

    def module(self, name: str, file: str | None = None) -> int:
        pairs = [(self.str("__name__"), self.str(name)), (self.str("__doc__"), self.none)]
        if file is not None:
            pairs.append((self.str("__file__"), self.str(file)))
        md_dict = self.dict(pairs)
        obj = self.new_object(self.types["module"], self.facts["module"][1])
        self.t.write_u64(obj + self.o("PyModuleObject.md_dict"), md_dict)
        self.kinds[obj] = "module"
        return obj

    # ---- from Python values --------------------------------------------------------

    def value(self, value: object) -> int:
        """Build the object graph of a plain Python value; returns its address."""
        if value is None:
            return self.none
        if isinstance(value, bool):
            return self.bool(value)
        if isinstance(value, int):
            return self.int(value)
        if isinstance(value, float):
            return self.float(value)
        if isinstance(value, str):
            return self.str(value)
        if isinstance(value, bytes):
            return self.bytes(value)
        if isinstance(value, tuple):
            return self.tuple([self.value(v) for v in value])
        if isinstance(value, list):
            return self.list([self.value(v) for v in value])
        if isinstance(value, dict):
            items = [(self.value(k), self.value(v)) for k, v in value.items()]
            return self.dict(items, hashes=[hash(k) for k in value])
        if isinstance(value, (set, frozenset)):
            # Insert in the host's iteration order: for small ints with distinct
            # slots the table order then equals the host's repr order.
            members = list(value)
            return self.set([self.value(v) for v in members], hashes=[hash(v) for v in members],
                            frozen=isinstance(value, frozenset))
        raise TypeError(f"no builder for {type(value).__name__}")

    # ---- cyclic GC -------------------------------------------------------------

    def gc_heads(self, state: int | None = None) -> list[int]:
        """Addresses of the generation 0, 1, 2 and permanent list heads."""
        state = self.gc_states[0] if state is None else state
        gens = state + self.o("_gc_runtime_state.generations")
        heads = [gens + i * self.o("gc_generation.size") + self.o("gc_generation.head") for i in range(3)]
        heads.append(state + self.o("_gc_runtime_state.permanent_generation") + self.o("gc_generation.head"))
        return heads

    def _init_gc_state(self, state: int) -> None:
        for head in self.gc_heads(state):
            self.t.write_u64(head, head)  # empty circular list: _gc_next = _gc_prev = &head
            self.t.write_u64(head + 8, head)
        self.t.write_i32(state + 12, 1)  # enabled
        self.gc_states.append(state)

    def gc_track(self, obj: int, generation: int, state: int | None = None) -> None:
        """Append the object's PyGC_Head to a generation list (gc_list_append)."""
        if not self.gc_states:
            return
        head = self.gc_heads(state)[generation]
        node = obj - 16
        last = self.t.peek_u64(head + 8) & ~3
        self.t.write_u64(last, node | (self.t.peek_u64(last) & 3))
        self.t.write_u64(node, head)
        self.t.write_u64(node + 8, last)
        self.t.write_u64(head + 8, node)

    def gc_untrack(self, obj: int) -> None:
        node = obj - 16
        nxt = self.t.peek_u64(node) & ~3
        prev = self.t.peek_u64(node + 8) & ~3
        if nxt:
            self.t.write_u64(prev, nxt)
            self.t.write_u64(nxt + 8, prev)
        self.t.write_u64(node, 0)
        self.t.write_u64(node + 8, 0)

    # ---- the runtime -------------------------------------------------------------

    def _build_runtime(self, py_version: bool, debug_offsets: bool, sys_version: str) -> None:
        self.runtime = self.static.alloc(RUNTIME_SIZE, align=64)
        self.t.symbols["_PyRuntime"] = self.runtime
        if self.key >= (3, 11) and py_version:
            address = self.static.alloc(4, align=4)
            self.t.write_u32(address, self.release.hexversion)
            self.t.symbols["Py_Version"] = address
        if self.key >= (3, 13) and debug_offsets:
            self.write_debug_offsets()
        if "_PyRuntimeState.gc" in self.off:
            self._init_gc_state(self.runtime + self.o("_PyRuntimeState.gc"))
        self.interp = self.new_interpreter()
        sysdict = self.dict([(self.str("version"), self.str(sys_version)), (self.str("platform"), self.str("linux"))])
        self.t.write_u64(self.interp + self.o("PyInterpreterState.sysdict"), sysdict)
        self.t.write_u64(self.interp + self.o("PyInterpreterState.modules"), self.dict([]))

    def new_interpreter(self) -> int:
        """Allocate a PyInterpreterState and push it on _PyRuntime.interpreters.head."""
        interp = self.heap.alloc(INTERP_SIZE)
        head_field = self.runtime + self.o("_PyRuntimeState.interpreters_head")
        self.t.write_u64(interp + self.o("PyInterpreterState.next"), self.t.peek_u64(head_field))
        self.t.write_i64(interp + self.o("PyInterpreterState.id"), len(self.gc_states))
        self.t.write_u64(head_field, interp)
        if "PyInterpreterState.gc" in self.off:
            self._init_gc_state(interp + self.o("PyInterpreterState.gc"))
        return interp

    def write_debug_offsets(self, overrides: dict[tuple[str, str], int] | None = None,
                            version: int | None = None, cookie: bytes = b"xdebugpy") -> None:
        overrides = overrides or {}
        positions = DEBUG_OFFSETS[self.key]
        blob = bytearray(max(positions.values()) + 8)
        blob[:8] = cookie
        struct.pack_into("<QQ", blob, 8, self.release.hexversion if version is None else version, 0)
        for name, value in DEBUG_OFFSETS_VALUES[self.key].items():
            group, _, field_name = name.rpartition(".")
            struct.pack_into("<Q", blob, positions[name], overrides.get((group, field_name), value))
        self.t.write(self.runtime, bytes(blob))

    # ---- threads, Python frames, pymalloc pools (the watch recorder's tests) ----------

    def code_with_ops(self, name: str, filename: str, firstlineno: int, ops: Sequence[str], line: int) -> int:
        """A code object whose bytecode is ``ops`` (arg 0 each) and whose line table maps
        every instruction to ``line`` (lnotab, the 3.10 linetable, the 3.11+ location table)."""
        numbers = OPCODES[self.key]
        bytecode = b"".join(bytes([numbers[op], 0]) for op in ops)
        delta = line - firstlineno
        assert 0 <= delta < 64 and 0 < len(ops) <= 8
        code = self.code(name, filename, firstlineno, code_units=len(ops))
        if self.key <= (3, 9):
            table, field = bytes([0, delta]), "PyCodeObject.co_lnotab"
        elif self.key == (3, 10):
            table, field = bytes([len(bytecode), delta]), "PyCodeObject.co_linetable"
        else:  # one "no column" entry (code 13) of len(ops) units, line delta as a signed varint
            table, field = bytes([0x80 | (13 << 3) | (len(ops) - 1), delta << 1]), "PyCodeObject.co_linetable"
        self.t.write_u64(code + self.o(field), self.bytes(table))
        if "PyCodeObject.co_code_adaptive" in self.off:
            self.t.write(code + self.o("PyCodeObject.co_code_adaptive"), bytecode)
        else:
            self.t.write_u64(code + self.o("PyCodeObject.co_code"), self.bytes(bytecode))
        return code

    def python_thread(self, tid: int, frames: Sequence[tuple[int, int]], *, slots: int = 0) -> int:
        """A PyThreadState run by OS thread ``tid`` (added to the target's threads) whose
        frame chain is ``frames``: (code object, instruction index) pairs, newest first,
        each run by its own eval-loop activation, with room for ``slots`` localsplus
        entries each. Returns the thread state."""
        fs_base = 0x7FFF_0000_0000 + tid * PAGE
        tstate = self.heap.alloc(0x400)
        self.t.write_u64(tstate + self.o("PyThreadState.interp"), self.interp)
        self.t.write_u64(tstate + self.o("PyThreadState.thread_id"), fs_base)
        if "PyThreadState.native_thread_id" in self.off:
            self.t.write_u64(tstate + self.o("PyThreadState.native_thread_id"), tid)
        head = self.interp + self.o("PyInterpreterState.threads_head")
        self.t.write_u64(tstate + self.o("PyThreadState.next"), self.t.peek_u64(head))
        self.t.write_u64(head, tstate)
        old_style = "_PyInterpreterFrame.size" not in self.off
        chain: list[int] = []
        for code, index in frames:
            if old_style:  # PyFrameObject; f_lasti is a byte offset up to 3.9, a code unit index in 3.10
                frame = self.heap.alloc(max(self.o("PyFrameObject.f_lasti") + 16,
                                            self.o("PyFrameObject.f_localsplus") + 8 * slots))
                self.t.write_u64(frame + self.o("PyFrameObject.f_code"), code)
                self.t.write_i32(frame + self.o("PyFrameObject.f_lasti"), index * (2 if self.key <= (3, 9) else 1))
                chain.append(frame)
                continue
            frame = self.heap.alloc(self.o("_PyInterpreterFrame.size") + 8 * slots)
            self.t.write_u64(frame + self.o("_PyInterpreterFrame.code"), code)
            units = code + self.o("PyCodeObject.co_code_adaptive")
            self.t.write_u64(frame + self.o("_PyInterpreterFrame.instr"), units + 2 * index)
            if "_PyInterpreterFrame.is_entry" in self.off:  # 3.11: the activation ends with its entry frame
                self.t.write_u8(frame + self.o("_PyInterpreterFrame.is_entry"), 1)
                chain.append(frame)
            else:  # 3.12+: the activation's on-C-stack entry sentinel (owner FRAME_OWNED_BY_CSTACK) follows
                sentinel = self.heap.alloc(self.o("_PyInterpreterFrame.size"))
                self.t.write_u8(sentinel + self.o("_PyInterpreterFrame.owner"), 3)
                chain += [frame, sentinel]
        back = "PyFrameObject.f_back" if old_style else "_PyInterpreterFrame.previous"
        for newer, older in zip(chain, chain[1:]):
            self.t.write_u64(newer + self.o(back), older)
        newest = chain[0] if chain else 0
        if "PyThreadState.current_frame" in self.off:  # 3.13
            self.t.write_u64(tstate + self.o("PyThreadState.current_frame"), newest)
        elif "_PyCFrame.current_frame" in self.off:  # 3.11/3.12
            cframe = self.heap.alloc(32)
            self.t.write_u64(cframe + self.o("_PyCFrame.current_frame"), newest)
            self.t.write_u64(tstate + self.o("PyThreadState.cframe"), cframe)
        else:
            self.t.write_u64(tstate + self.o("PyThreadState.frame"), newest)
        self.t.thread_list.append(ThreadInfo(tid, f"thread-{tid}", fs_base))
        return tstate

    def pool(self, size_class: int) -> Pool:
        """An empty pymalloc pool of ``size_class``-byte blocks (see :class:`Pool`)."""
        return Pool(self, size_class)


class Pool:
    """A pymalloc pool (Objects/obmalloc.c struct pool_header) in its own pool-aligned
    mapping. Usable as the ``arena`` of FakePython builders: each alloc hands out the
    next never-used block. ``free``/``reuse`` do what pymalloc_free/pymalloc_alloc do
    to the header and the block's first word (the free-list link)."""

    BASE = 0x7F60_0000_0000  # one pool per MiB

    def __init__(self, py: FakePython, size_class: int) -> None:
        assert size_class % 16 == 0 and 16 <= size_class <= 512
        self.target = py.target
        self.size_class = size_class
        self.pool_size = 4096 if py.key <= (3, 9) else 16384
        self.address = Pool.BASE
        while self.target.is_mapped(self.address):
            self.address += 0x10_0000
        self.target.map(self.address, self.pool_size)
        self.count = 0
        self.freeblock = 0
        self.nextoffset = POOL_OVERHEAD
        self._write_header()

    def _write_header(self) -> None:
        t = self.target
        t.write_u32(self.address, self.count)  # ref.count
        t.write_u64(self.address + 8, self.freeblock)
        t.write_u32(self.address + 36, self.size_class // 16 - 1)  # szidx
        t.write_u32(self.address + 40, self.nextoffset)
        t.write_u32(self.address + 44, self.pool_size - self.size_class)  # maxnextoffset

    def alloc(self, size: int, align: int = 16) -> int:
        del align
        assert size <= self.size_class, (size, self.size_class)
        block = self.address + self.nextoffset
        self.nextoffset += self.size_class
        self.count += 1
        self._write_header()
        return block

    def free(self, block: int) -> None:
        """pymalloc_free: the block's first word becomes the old free-list head."""
        self.target.write_u64(block, self.freeblock)
        self.freeblock = block
        self.count -= 1
        self._write_header()

    def reuse(self) -> int:
        """pymalloc_alloc from the free list: pop its head (the caller writes the new object)."""
        block = self.freeblock
        assert block, "the free list is empty"
        self.freeblock = self.target.peek_u64(block)
        self.count += 1
        self._write_header()
        return block


_TEMPLATES: dict[tuple[int, int], FakePython] = {}


# ---- allocators: pymalloc arenas, the debug hooks, glibc chunks (liveness tests) ----------

DEBUG_HEADER = 16  # PYTHONMALLOC=debug: {size (big-endian); api id; 7 x 0xFD} (Objects/obmalloc.c)
ARENA_BASE = 0x7F70_0000_0000  # the fake's pymalloc arena: aligned to every ARENA_SIZE
GLIBC_HEAP = 0x5555_5560_0000  # the fake's malloc heap ("brk" area)
LIBC_DATA = 0x7E00_0020_0000  # stands for main_arena in libc's .data (free-list links point there)


class ArenaPool(Pool):
    """A :class:`Pool` carved out of a :class:`FakeObmalloc` arena (arenaindex 0)."""

    def __init__(self, py: FakePython, size_class: int, address: int) -> None:
        assert size_class % 16 == 0 and 16 <= size_class <= 512
        self.target = py.target
        self.size_class = size_class
        self.pool_size = 4096 if py.key <= (3, 9) else 16384
        self.address = address
        self.count = 0
        self.freeblock = 0
        self.nextoffset = POOL_OVERHEAD
        self._write_header()


class FakeObmalloc:
    """CPython's allocator state in a FakePython, laid out as the real one is.

    - which allocator: ``_PyObject`` / ``_PyMem_Debug`` (<= 3.11 statics) or
      ``_PyRuntime.allocators`` (3.12+), pointing at fake functions named like
      CPython's (``_PyObject_Malloc``, ``_PyMem_DebugMalloc``, ...);
    - one arena: ``arenas[0]`` + ``maxarenas`` (statics up to 3.11, the
      interpreter's ``struct _obmalloc_state`` from 3.12, ``obmalloc_state_main``
      in 3.13) and, from 3.10, the radix tree ``arena_map_root``;
    - objects in its pools, with the debug hooks' header and 0xDD fill when
      ``debug_hooks``; glibc-style chunks for blocks above 512 bytes;
    - ``section_of`` on the target: the static area is libpython's ``.data``.
    """

    def __init__(self, py: FakePython, *, debug_hooks: bool = False, allocator: str = "pymalloc",
                 tracemalloc: bool = False) -> None:
        self.py = py
        self.t = py.target
        self.debug_hooks = debug_hooks
        self.hooks = DEBUG_HEADER if debug_hooks else 0
        key = py.key
        self.pool_size = 4096 if key <= (3, 9) else 16384
        self.arena_size = (256 << 10) if key <= (3, 9) else (1 << 20)
        self.pools: dict[int, ArenaPool] = {}
        self.next_pool = ARENA_BASE
        self.heap_cursor = GLIBC_HEAP + 16
        self.heap_mapped = 0
        self.chunks: dict[int, int] = {}  # user pointer -> chunk size
        libpython = next((m.path for m in self.t.module_list if "libpython" in m.path), "libpython")
        self.t.sections.append((STATIC_BASE, HEAP_BASE, ".data", libpython))
        functions = {name: py.static.alloc(16) for name in (
            "_PyObject_Malloc", "_PyMem_RawMalloc", "_PyMem_DebugMalloc", "_PyMem_DebugRawMalloc",
            "_PyObject_MiMalloc", "tracemalloc_malloc_gil", "tracemalloc_malloc")}
        self.t.symbols.update(functions)
        real = {"pymalloc": "_PyObject_Malloc", "malloc": "_PyMem_RawMalloc", "mimalloc": "_PyObject_MiMalloc"}[allocator]
        outer = "_PyMem_DebugMalloc" if debug_hooks else real
        if "_PyRuntimeState.allocators_standard_obj" in py.off:
            standard = py.runtime + py.o("_PyRuntimeState.allocators_standard_obj")
            debug = py.runtime + py.o("_PyRuntimeState.allocators_debug_obj")
        else:
            standard = py.static.alloc(40)
            debug_all = py.static.alloc(3 * 48)
            self.t.symbols["_PyObject"] = standard
            self.t.symbols["_PyMem_Debug"] = debug_all
            debug = debug_all + 2 * 48
        self.t.write_u64(standard + 8, functions[outer])
        self.t.write_u8(debug, ord("o"))
        self.t.write_u64(debug + 16, functions[real])
        if tracemalloc:  # tracemalloc's hooks wrap the allocator and keep it in allocators.obj
            saved = self._tracemalloc_saved_obj()
            self.t.write_u64(saved + 8, functions[outer])
            # Python/tracemalloc.c's hook: tracemalloc_malloc_gil up to 3.14, tracemalloc_malloc in 3.15
            hook = "tracemalloc_malloc" if py.key >= (3, 15) else "tracemalloc_malloc_gil"
            self.t.write_u64(standard + 8, functions[hook])
        self._build_arena()

    def _tracemalloc_saved_obj(self) -> int:
        py = self.py
        if "_tracemalloc_runtime_state.allocators_obj" in py.off:
            return (py.runtime + py.o("_PyRuntimeState.tracemalloc")
                    + py.o("_tracemalloc_runtime_state.allocators_obj"))
        saved = py.static.alloc(3 * 40)
        self.t.symbols["allocators"] = saved
        return saved + 2 * 40

    # ---- the arena ----------------------------------------------------------------

    def _state(self) -> int:
        """struct _obmalloc_state (3.12+), or 0 up to 3.11 (statics)."""
        py = self.py
        if "PyInterpreterState.obmalloc" not in py.off:
            return 0
        if py.o("PyInterpreterState.obmalloc_size") != 8:
            return py.interp + py.o("PyInterpreterState.obmalloc")  # 3.12: embedded
        state = py.static.alloc(0x1000)  # 3.13: the main interpreter's obmalloc_state_main
        self.t.symbols["obmalloc_state_main"] = state
        return state

    def _build_arena(self) -> None:
        py, t = self.py, self.t
        t.map(ARENA_BASE, self.arena_size)
        arenas = py.static.alloc(48 * 4)
        t.write_u64(arenas, ARENA_BASE)  # arenas[0].address
        t.write_u64(arenas + 8, ARENA_BASE)  # pool_address: the next never-used pool
        t.write_u32(arenas + 16, self.arena_size // self.pool_size)  # nfreepools
        t.write_u32(arenas + 20, self.arena_size // self.pool_size)  # ntotalpools
        self.arena_object = arenas
        state = self._state()
        if state:
            arenas_var, maxarenas_var = state + py.o("_obmalloc_state.arenas"), state + py.o("_obmalloc_state.maxarenas")
            root = state + py.o("_obmalloc_state.arena_map_root")
        else:
            arenas_var, maxarenas_var = py.static.alloc(8), py.static.alloc(8)
            t.symbols["arenas"], t.symbols["maxarenas"] = arenas_var, maxarenas_var
            root = py.static.alloc(8 << 10) if py.key == (3, 10) else py.static.alloc(8 << 15) if py.key == (3, 11) else 0
            if root:
                t.symbols["arena_map_root"] = root
        t.write_u64(arenas_var, arenas)
        t.write_u32(maxarenas_var, 4)
        if root:
            self._mark_used(root, ARENA_BASE)

    def _mark_used(self, root: int, base: int) -> None:
        """obmalloc.c arena_map_mark_used() for an ARENA_SIZE-aligned arena: tail_hi = -1."""
        py, t = self.py, self.t
        top_shift, top_bits, mid_shift, mid_bits, bot_bits = (38, 10, 28, 10, 8) if py.key == (3, 10) else (49, 15, 34, 15, 14)
        mid = py.static.alloc(8 << mid_bits)
        bot = py.static.alloc(8 << bot_bits)
        t.write_u64(root + 8 * ((base >> top_shift) & ((1 << top_bits) - 1)), mid)
        t.write_u64(mid + 8 * ((base >> mid_shift) & ((1 << mid_bits) - 1)), bot)
        t.write_i32(bot + 8 * ((base >> 20) & ((1 << bot_bits) - 1)), -1)  # arena_coverage_t.tail_hi

    def pool(self, size_class: int) -> ArenaPool:
        """The (first) pool serving ``size_class``, carved out of the arena on first use."""
        pool = self.pools.get(size_class)
        if pool is None:
            pool = ArenaPool(self.py, size_class, self.next_pool)
            self.next_pool += self.pool_size
            self.t.write_u64(self.arena_object + 8, self.next_pool)  # pool_address
            self.pools[size_class] = pool
        return pool

    # ---- objects --------------------------------------------------------------------

    def _request(self, type_address: int, size: int) -> tuple[int, int]:
        flags = self.py.type_flags.get(type_address, 0)
        pre = (16 if flags & TPFLAGS_HAVE_GC else 0) + (16 if flags & self.py.managed_mask() else 0)
        return pre, pre + size

    def new_object(self, type_address: int, size: int, *, refcnt: int = 1, generation: int | None = 0) -> int:
        """An object of ``size`` bytes in a pymalloc block (or a glibc chunk above 512 bytes)."""
        pre, request = self._request(type_address, size)
        total = request + (self.hooks + 8 if self.debug_hooks else 0)
        if total <= 512:
            block = self.pool(-(-total // 16) * 16).alloc(total)
        elif self.debug_hooks:
            # pymalloc hands large requests to the (hooked) PyMem_RawMalloc: a second, 'r' header.
            user = self.malloc(total + self.hooks + 8)
            self._debug_header(user, total, "r")
            block = user + self.hooks
        else:
            block = self.malloc(total)
        if self.debug_hooks:
            self._debug_header(block, request)
        obj = block + self.hooks + pre
        self.t.write(block + self.hooks, b"\0" * request)
        self.py._header(obj, type_address, refcnt)
        if type_address in self.py.type_flags and self.py.type_flags[type_address] & TPFLAGS_HAVE_GC and generation is not None:
            self.py.gc_track(obj, generation)
        return obj

    def _debug_header(self, block: int, request: int, api: str = "o") -> None:
        self.t.write(block, struct.pack(">Q", request) + api.encode() + b"\xfd" * 7)
        self.t.write(block + DEBUG_HEADER + request, b"\xfd" * 8)

    def instance(self, type_address: int, **kwargs: int) -> int:
        basicsize = struct.unpack("<q", self.t.read(type_address + self.py.o("PyTypeObject.tp_basicsize"), 8))[0]
        return self.new_object(type_address, basicsize, **kwargs)

    def free_object(self, obj: int, type_address: int, size: int) -> None:
        """What deallocation does to the memory: debug 0xDD fill, then pymalloc_free / free()."""
        pre, request = self._request(type_address, size)
        block = obj - pre - self.hooks
        if self.debug_hooks:
            self.t.write(block, b"\xdd" * (self.hooks + request + 8))
        total = request + (self.hooks + 8 if self.debug_hooks else 0)
        if total <= 512:
            self.pools[-(-total // 16) * 16].free(block)
        elif self.debug_hooks:
            self.t.write(block - self.hooks, b"\xdd" * self.hooks)  # the raw header, then free()
            self.free_chunk(block - self.hooks)
        else:
            self.free_chunk(block)

    # ---- glibc ------------------------------------------------------------------------

    def malloc(self, size: int) -> int:
        """A glibc chunk {prev_size; size | PREV_INUSE} with its user data at +16."""
        chunk_size = max(32, -(-(size + 8) // 16) * 16)
        user = self.heap_cursor
        end = user - 16 + chunk_size
        needed = end + 32 - GLIBC_HEAP
        if needed > self.heap_mapped:
            grow = -(-(needed - self.heap_mapped) // 0x10000) * 0x10000
            self.t.map(GLIBC_HEAP + self.heap_mapped, grow)
            self.heap_mapped += grow
        self.t.write_u64(user - 8, chunk_size | 1)
        self.t.write_u64(end + 8, 32 | 1)  # the next chunk: PREV_INUSE set
        self.heap_cursor = end + 16
        self.chunks[user] = chunk_size
        return user

    def free_chunk(self, user: int, *, tcache: bool = False) -> None:
        """free(): a tcache entry {PROTECT_PTR(next = NULL), key}, or an unsorted-bin chunk."""
        size = self.chunks[user]
        if tcache:
            self.t.write_u64(user, user >> 12)  # safe-linked NULL: the last entry of its bin
            self.t.write_u64(user + 8, 0x1234_5678_9ABC_DEF0)  # tcache_key
            return
        self.t.write_u64(user, LIBC_DATA)  # fd, bk -> main_arena's unsorted bin
        self.t.write_u64(user + 8, LIBC_DATA)
        nxt = user - 16 + size
        self.t.write_u64(nxt, size)  # set_foot(): the next chunk's prev_size
        self.t.write_u64(nxt + 8, self.t.peek_u64(nxt + 8) & ~1)  # clear PREV_INUSE


class FakeTracemalloc:
    """tracemalloc's traces table in a FakePython (Modules/_tracemalloc.c; pycore_tracemalloc.h).

    ``trace(pointer, size, frames)`` records an allocation whose traceback is
    ``frames`` ((filename, lineno), most recent first), as tracemalloc does.
    """

    NBUCKETS = 16

    def __init__(self, py: FakePython, *, tracing: bool = True, max_nframe: int = 25) -> None:
        self.py = py
        self.t = py.target
        off = py.off
        self.legacy = "_Py_hashtable_t.key_size" in off  # 3.8: keys and data inline
        self.table = py.static.alloc(80)
        self.buckets = py.static.alloc(8 * self.NBUCKETS)
        if self.legacy:
            self.t.write_u64(self.table + py.o("_Py_hashtable_t.nbuckets"), self.NBUCKETS)
            self.t.write_u64(self.table + py.o("_Py_hashtable_t.key_size"), 8)
            self.t.write_u64(self.table + py.o("_Py_hashtable_t.data_size"), 16)
        else:
            self.t.write_u64(self.table + py.o("_Py_hashtable_t.nbuckets"), self.NBUCKETS)
        self.t.write_u64(self.table + py.o("_Py_hashtable_t.buckets"), self.buckets)
        if "_PyRuntimeState.tracemalloc" in off:
            state = py.runtime + py.o("_PyRuntimeState.tracemalloc")
            self.t.write_i32(state + py.o("_tracemalloc_runtime_state.tracing"), int(tracing))
            self.t.write_i32(state + py.o("_tracemalloc_runtime_state.max_nframe"), max_nframe)
            self.t.write_u64(state + py.o("_tracemalloc_runtime_state.traces"), self.table)
        else:
            config = py.static.alloc(16)
            self.t.symbols["_Py_tracemalloc_config"] = config
            self.t.write_i32(config + py.o("_PyTraceMalloc_Config.tracing"), int(tracing))
            self.t.write_i32(config + py.o("_PyTraceMalloc_Config.max_nframe"), max_nframe)
            variable = py.static.alloc(8)
            self.t.symbols["tracemalloc_traces"] = variable
            self.t.write_u64(variable, self.table)

    @staticmethod
    def hash_pointer(pointer: int) -> int:
        return ((pointer >> 4) | (pointer << 60)) & ((1 << 64) - 1)

    def _traceback(self, frames: Sequence[tuple[str, int]]) -> int:
        py = self.py
        size = py.o("frame_t.size")
        tb = py.static.alloc(py.o("traceback_t.frames") + size * len(frames), align=8)
        if py.o("traceback_t.nframe_size") == 2:
            self.t.write_u16(tb + py.o("traceback_t.nframe"), len(frames))
        else:
            self.t.write_i32(tb + py.o("traceback_t.nframe"), len(frames))
        if "traceback_t.total_nframe" in py.off:
            self.t.write_u16(tb + py.o("traceback_t.total_nframe"), len(frames))
        for i, (filename, lineno) in enumerate(frames):
            at = tb + py.o("traceback_t.frames") + i * size
            if py.key >= (3, 15):  # 3.15 tracemalloc.c: the filename is a UTF-8 C string
                self.t.write_u64(at, py.cstring(filename.encode()))
            else:
                self.t.write_u64(at, py.str(filename))
            self.t.write_u32(at + py.o("frame_t.lineno"), lineno)
        return tb

    def trace(self, pointer: int, size: int, frames: Sequence[tuple[str, int]]) -> None:
        py = self.py
        key_hash = self.hash_pointer(pointer)
        bucket = self.buckets + 8 * (key_hash & (self.NBUCKETS - 1))
        traceback = self._traceback(frames)
        entry = py.static.alloc(48)
        self.t.write_u64(entry, self.t.peek_u64(bucket))  # prepend to the bucket's list
        self.t.write_u64(entry + py.o("_Py_hashtable_entry_t.key_hash"), key_hash)
        if self.legacy:
            self.t.write_u64(entry + 16, pointer)  # the key, then trace_t, inline
            self.t.write_u64(entry + 24, size)
            self.t.write_u64(entry + 32, traceback)
        else:
            trace = py.static.alloc(16)
            self.t.write_u64(trace, size)
            self.t.write_u64(trace + 8, traceback)
            self.t.write_u64(entry + py.o("_Py_hashtable_entry_t.key"), pointer)
            self.t.write_u64(entry + py.o("_Py_hashtable_entry_t.value"), trace)
        self.t.write_u64(bucket, entry)
