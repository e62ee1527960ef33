"""`pylife diagnose` on fake crash stops: the kind of bug, from the signal, the frames and the verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from pylife.commands import execute
from pylife.cpython import crash
from pylife.target import FrameArgument, FrameArguments, NativeFrame, StopInfo, ThreadInfo

from .builders import FakeObmalloc, FakePython
from .support import run_json, session_of

TID = 4242


def _stop(py: FakePython, signal: str | None, *, code: int | None = 1, fault: int | None = None,
          frames: Sequence[tuple[str, Sequence[tuple[str, str, int | None]]]] = (),
          registers: dict[str, int] | None = None) -> None:
    """Make the fake target stopped by ``signal`` in ``frames`` (function, [(arg, C type, value)]), innermost first."""
    stop = StopInfo(TID, signal, code, fault, 0x401000, registers or {},
                    tuple(FrameArguments(name, 0x401000 + i, tuple(FrameArgument(*a) for a in args))
                          for i, (name, args) in enumerate(frames)))
    py.t.stop = stop
    py.t.thread_list.append(ThreadInfo(TID, "main", None))
    py.t.frames[TID] = [NativeFrame(0x401000 + i, name, "x.c", 1, "/lib/libpython.so") for i, (name, _a) in enumerate(frames)]


def _diagnose(py: FakePython) -> dict[str, Any]:
    data = run_json(py, ["diagnose"])
    assert {"signal", "kind", "summary", "objects", "stack"} <= set(data), data
    assert data["kind"] in crash.KINDS
    return data


def _object(data: dict[str, Any], address: int) -> dict[str, Any]:
    found = [o for o in data["objects"] if o["address"] == address]
    assert found, data["objects"]
    return found[0]


def _freed_instance(py: FakePython, heap: FakeObmalloc) -> int:
    cls = py.heap_type("Victim", "__main__", flags=py.facts["Slotted"][0], basicsize=24)
    victim = heap.instance(cls, generation=None)
    heap.free_object(victim, cls, 24)
    return victim


def test_null_member_of_a_live_object(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    lst = heap.new_object(py.types["list"], 40)
    freed = _freed_instance(py, heap)
    _stop(py, "SIGSEGV", fault=0x8, frames=[("list_item", [("a", "PyListObject *", lst), ("i", "Py_ssize_t", 1)])],
          registers={"rdi": freed, "rax": 0})  # a stale pointer in a register changes nothing
    data = _diagnose(py)
    assert data["kind"] == "null-dereference", data["summary"]
    assert _object(data, lst)["verdict"] == "ALIVE" and _object(data, lst)["type"] == "list"
    assert all(o["address"] != freed for o in data["objects"])  # untyped sources only show live objects
    assert "0x8" in data["summary"] and data["stack"][0]["function"] == "list_item"


@pytest.mark.parametrize("code", [128, None], ids=["si_code", "no_si_code"])
def test_use_after_free_under_debug_hooks(py: FakePython, code: int | None) -> None:
    heap = FakeObmalloc(py, debug_hooks=True)
    victim = _freed_instance(py, heap)
    _stop(py, "SIGSEGV", code=code, fault=0, frames=[("PyObject_GetAttr", [("v", "PyObject *", victim)])],
          registers={"rax": 0xDDDDDDDDDDDDDDDD})
    data = _diagnose(py)
    assert data["kind"] == "use-after-free", data["summary"]
    found = _object(data, victim)
    assert found["verdict"] == "FREED" and any("0xDD" in r for r in found["reasons"])


def test_dead_fill_in_a_register_alone(py: FakePython) -> None:
    FakeObmalloc(py, debug_hooks=True)
    _stop(py, "SIGSEGV", code=128, fault=0, frames=[("some_c_function", [])], registers={"rax": 0xDDDDDDDDDDDDDDDD})
    data = _diagnose(py)
    assert data["kind"] == "use-after-free" and "rax" in data["summary"]


def test_corrupt_type(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    obj = heap.new_object(py.types["float"], 24)
    py.t.write_u64(obj + 8, 0xDEAD0000)
    _stop(py, "SIGSEGV", fault=0xDEAD0058, frames=[("PyObject_Repr", [("v", "PyObject *", obj)])])
    data = _diagnose(py)
    assert data["kind"] == "corrupt-type" and _object(data, obj)["verdict"] == "CORRUPT"


def test_over_decref(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    victim = _freed_instance(py, heap)
    _stop(py, "SIGSEGV", fault=0x7F70_DEAD_0000, frames=[("subtype_dealloc", [("self", "PyObject *", victim)]),
                                                          ("_Py_Dealloc", [("op", "PyObject *", victim)])])
    data = _diagnose(py)
    assert data["kind"] == "over-decref", data["summary"]
    assert _object(data, victim)["type"] == "__main__.Victim"  # the stale type


def test_fatal_error_from_the_debug_allocator(py: FakePython) -> None:
    heap = FakeObmalloc(py, debug_hooks=True)
    obj = heap.new_object(py.types["bytes"], 33 + 8)
    py.t.write_u8(obj + 41, 0x41)  # the first trailing pad byte
    msg, func = py.cstring(b"bad trailing pad byte"), py.cstring(b"_PyMem_DebugRawFree")
    _stop(py, "SIGABRT", code=-6, frames=[
        ("raise", [("sig", "int", 6)]), ("abort", []),
        ("fatal_error", [("prefix", "const char *", func), ("msg", "const char *", msg)]),
        ("_Py_FatalErrorFunc", [("func", "const char *", func), ("msg", "const char *", msg)]),
        ("_PyMem_DebugCheckAddress", [("p", "const void *", None)]),
        ("_PyMem_DebugRawFree", [("ctx", "void *", 0), ("p", "void *", obj)]),
    ])
    data = _diagnose(py)
    assert data["kind"] == "fatal-error" and data["signal"] == "SIGABRT"
    assert data["fatal_error"] == {"function": "_PyMem_DebugCheckAddress", "category": "debug-allocator",
                                   "message": "bad trailing pad byte", "origin": "_PyMem_DebugRawFree"}
    found = _object(data, obj)
    assert found["type"] == "bytes" and any("trailing pad" in r for r in found["reasons"])


def test_negative_refcount(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    obj = heap.new_object(py.types["float"], 24, refcnt=-1)
    _stop(py, "SIGABRT", code=-6, frames=[("abort", []), ("fatal_error", []), ("_Py_FatalRefcountErrorFunc", []),
                                          ("_Py_NegativeRefcount", [("op", "PyObject *", obj)])])
    data = _diagnose(py)
    assert data["kind"] == "negative-refcount"
    assert _object(data, obj)["verdict"] == "CORRUPT"


def test_glibc_double_free(py: FakePython) -> None:
    FakeObmalloc(py)
    text = py.cstring(b"free(): double free detected in tcache 2")
    _stop(py, "SIGABRT", code=-6, frames=[("abort", []), ("malloc_printerr", [("str", "const char *", text)]),
                                          ("_int_free", [])])
    assert _diagnose(py)["kind"] == "double-free"


def test_a_stale_register_is_no_use_after_free(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    freed = _freed_instance(py, heap)
    _stop(py, "SIGSEGV", fault=0x7F70_DEAD_0000, frames=[("memcpy", [])], registers={"rdi": freed})
    data = _diagnose(py)
    assert data["kind"] == "unknown" and data["objects"] == []


def test_without_stop_details(py: FakePython) -> None:
    data = _diagnose(py)
    assert data["signal"] is None and data["kind"] == "unknown" and data["notes"]
    assert execute(session_of(py), ["diagnose"]).startswith("pylife diagnose: unknown")


def test_fatal_error_recognised_by_name_only(py: FakePython) -> None:
    """Arguments optimized out: the category still comes from the function names."""
    FakeObmalloc(py)
    _stop(py, "SIGABRT", code=-6, frames=[("abort", []), ("_Py_FatalErrorFunc", [("msg", "const char *", None)])])
    data = _diagnose(py)
    assert data["kind"] == "fatal-error" and data["fatal_error"]["message"] is None
    assert "message not readable" in data["summary"]
