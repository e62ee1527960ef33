"""`pylife diagnose` on fake crash stops: the kind of bug, from the signal, the frames and the verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from pylife.commands import execute
from pylife.cpython import crash
from pylife.record import events as ev
from pylife.record.events import Event, History
from pylife.target import FrameArgument, FrameArguments, NativeFrame, StopInfo, ThreadInfo

from .builders import FakeObmalloc, FakePython
from .support import run_json, session_of

TID = 4242


def _stop(py: FakePython, signal: str | None, *, code: int | None = 1, fault: int | None = None,
          frames: Sequence[tuple[str, Sequence[tuple[str, str, int | None]]]] = (),
          registers: dict[str, int] | None = None,
          locals_: dict[str, Sequence[tuple[str, str, int | None]]] | None = None,
          modules: dict[str, str] | None = None) -> None:
    """Make the fake target stopped by ``signal`` in ``frames`` (function, [(arg, C type, value)]), innermost first;
    ``locals_`` and ``modules`` by function name (modules default to libpython)."""
    locals_ = locals_ or {}
    modules = modules or {}
    stop = StopInfo(TID, signal, code, fault, 0x401000, registers or {},
                    tuple(FrameArguments(name, 0x401000 + i, tuple(FrameArgument(*a) for a in args),
                                         tuple(FrameArgument(*v) for v in locals_.get(name, ())))
                          for i, (name, args) in enumerate(frames)))
    py.t.stop = stop
    py.t.thread_list.append(ThreadInfo(TID, "main", None))
    py.t.frames[TID] = [NativeFrame(0x401000 + i, name, "x.c", 1, modules.get(name, "/lib/libpython3.12.so.1.0"))
                        for i, (name, _a) in enumerate(frames)]


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
    # A register pointing at a freed block start is shown, and is no evidence against the live object.
    assert _object(data, freed)["verdict"] == "FREED" and _object(data, freed)["source"] == "register rdi"
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
    assert data["kind"] == "unknown", data["summary"]
    assert [o["source"] for o in data["objects"]] == ["register rdi"]  # shown, but no evidence by itself


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


# ---- evidence first (issue 10) -------------------------------------------------------


def test_a_freed_object_being_deallocated_outranks_a_small_fault_address(py: FakePython) -> None:
    """A deallocator ran on a freed object and crashed reading a zeroed link (fault 0x8): over-decref."""
    heap = FakeObmalloc(py)
    victim = _freed_instance(py, heap)
    _stop(py, "SIGSEGV", fault=0x8, frames=[
        ("clear_weakref", [("self", "PyWeakReference *", 0)]),
        ("subtype_dealloc", [("self", "PyObject *", victim)]),
        ("Py_DECREF", [("op", "PyObject *", victim)]),
        ("buggy_dealloc_freed", [("self", "PyObject *", 0)]),
    ], modules={"Py_DECREF": "/ext/buggy.so", "buggy_dealloc_freed": "/ext/buggy.so"})
    data = _diagnose(py)
    assert data["kind"] == "over-decref", data["summary"]
    assert data["victim"]["address"] == victim and data["victim"]["type"] == "__main__.Victim"
    assert data["culprit"]["function"] == "buggy_dealloc_freed"  # Py_DECREF is CPython's header, in buggy.so
    assert "culprit: buggy_dealloc_freed" in data["summary"]


def test_a_null_read_from_a_freed_object_is_a_use_after_free(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    victim = _freed_instance(py, heap)
    _stop(py, "SIGSEGV", fault=0x0, frames=[("Py_REFCNT", [("ob", "PyObject *", 0)]),
                                           ("box_value_refcnt", [("box", "BoxObject *", victim)])],
          modules={"Py_REFCNT": "/ext/buggy.so", "box_value_refcnt": "/ext/buggy.so"})
    data = _diagnose(py)
    assert data["kind"] == "use-after-free", data["summary"]
    assert "(the crashing frame)" in _object(data, victim)["source"]  # the caller of the header helper
    assert data["culprit"]["function"] == "box_value_refcnt"


def test_null_member_of_a_live_object_in_a_header_helper(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    box = heap.new_object(py.types["float"], 24)
    _stop(py, "SIGSEGV", fault=0x0, frames=[("Py_REFCNT", [("ob", "PyObject *", 0)]),
                                           ("box_value_refcnt", [("box", "BoxObject *", box)])])
    data = _diagnose(py)
    assert data["kind"] == "null-dereference" and f"live float at {box:#x}" in data["evidence"], data["summary"]
    assert data["victim"] is None and data["culprit"] is None  # everything here is libpython's


def test_a_freed_local_erased_by_the_debug_fill_with_its_rerun(py: FakePython) -> None:
    heap = FakeObmalloc(py, debug_hooks=True)
    victim = _freed_instance(py, heap)
    lst = heap.new_object(py.types["list"], 40)
    py.t.argv = ("/usr/bin/python3.12", "app.py", "--fast")
    _stop(py, "SIGSEGV", code=128, fault=0, frames=[("buggy_stale_local", [("lst", "PyObject *", lst)])],
          locals_={"buggy_stale_local": [("item", "PyObject *", victim), ("name", "const char *", 0)]})
    data = _diagnose(py)
    assert data["kind"] == "use-after-free", data["summary"]
    assert data["victim"] == {"address": victim, "type": None, "type_erased": True,
                              "source": "local item of buggy_stale_local (the crashing frame)"}
    assert data["rerun"] == f"pylife run --debugger fake --watch-address {victim:#x} -- /usr/bin/python3.12 app.py --fast"
    text = execute(session_of(py), ["diagnose"])
    assert "type of" in text and "is erased" in text, text
    assert data["rerun"] in text and "(type erased) FREED" in text, text
    assert text.count(f"{victim:#x} (type erased)") == 1  # each object listed once


def test_rerun_without_known_arguments(py: FakePython) -> None:
    heap = FakeObmalloc(py, debug_hooks=True)
    victim = _freed_instance(py, heap)
    _stop(py, "SIGSEGV", code=128, fault=0, frames=[("PyObject_Repr", [("v", "PyObject *", victim)])])
    data = _diagnose(py)
    assert data["rerun"] == f"pylife run --debugger fake --watch-address {victim:#x} -- <program and its arguments>"


def test_a_corrupt_free_list_is_named(py: FakePython) -> None:
    """An incref through a stale pointer on a freed block whose link was NULL: the pool's free list is 0x1."""
    heap = FakeObmalloc(py)
    blob = heap.new_object(py.types["bytes"], 473)
    pool = heap.pools[480]
    pool.freeblock = 0x1  # what pymalloc_alloc left after handing out the block whose link was incref'd
    pool._write_header()
    _stop(py, "SIGSEGV", fault=0x1, frames=[("pymalloc_alloc", [("nbytes", "size_t", 473)]),
                                           ("_PyObject_Malloc", []), ("buggy_corrupt_free_list", [])],
          modules={"buggy_corrupt_free_list": "/ext/buggy.so"})
    data = _diagnose(py)
    assert data["kind"] == "use-after-free", data["summary"]
    assert data["free_lists"] == [f"pool {pool.address:#x} free list corrupt: link 0x1, an incref on a freed block "
                                  "(size class 480)"]
    assert data["evidence"] == data["free_lists"][0] and blob


def test_pylifes_own_use_after_free_stop_is_explained(py: FakePython) -> None:
    FakeObmalloc(py)
    session = session_of(py)
    history = History(0x7F70_0000_1000, "__main__.Victim")
    message = "use after free: PyList_Append wrote the refcount of freed object 0x7f7000001000"
    history.events.append(Event(7, TID, 0, 1, ev.USE_AFTER_FREE, "PyList_Append", None, None, [], message))
    session.recorder.histories[history.address, 0] = history
    session.recorder.last_stop_message = f"pylife: {message}"
    _stop(py, "SIGTRAP", frames=[("PyList_Append", [])])
    data = run_json(py, ["diagnose"], session)
    assert data["kind"] == "use-after-free" and "watch event 7" in data["evidence"], data


@pytest.mark.parametrize("instruction,expected", [
    ("mov rax, qword ptr [rax]", 0), ("mov rax, qword ptr [rdi + 0x8]", 8), ("mov eax, dword ptr [rdx + 4*rcx - 0x10]", 0x14),
    ("mov rax, qword ptr [rip + 0x10]", None), ("mov rax, qword ptr fs:[0x28]", None), ("ret ", None),
    ("mov rax, qword ptr [r12d + 0x2]", 0x102),
], ids=["base", "disp", "index", "rip", "segment", "none", "alias"])
def test_fault_from_instruction(instruction: str, expected: int | None) -> None:
    registers = {"rax": 0, "rdi": 0, "rdx": 0x20, "rcx": 1, "r12": (1 << 40) | 0x100, "rip": 0x401000}
    assert crash.fault_from_instruction(instruction, registers) == expected


def test_a_recorded_borrowed_return_is_said_at_the_crash(py: FakePython) -> None:
    """Issue 10, point 7: the watch history proved who returned the victim uncounted; diagnose says so."""
    heap = FakeObmalloc(py)
    victim = _freed_instance(py, heap)
    _stop(py, "SIGSEGV", fault=0x7F70_DEAD_0000, frames=[("PyObject_Repr", [("v", "PyObject *", victim)])])
    session = session_of(py)
    release = {"op": "DELETE_FAST", "local": "db", "call_line": 11, "callee": "ext.get_borrowed",
               "function": "get_borrowed", "module": "/x/ext.so", "watched_before_call": True}
    stack = [{"kind": "native", "function": "_PyEval_EvalFrameDefault", "file": None, "line": None, "module": "libpython3.12.so"},
             {"kind": "python", "function": "scenario", "file": "/src/app.py", "line": 12, "module": None}]
    history = History(victim, "__main__.Victim", initial=1, freed_at=1)
    history.events = [Event(1, TID, 1, 0, ev.ZERO, "_PyEval_EvalFrameDefault", "DELETE_FAST", "scenario (/src/app.py:12)",
                            stack, release=release)]
    session.recorder.histories[history.key] = history
    data = run_json(py, ["diagnose"], session)
    assert data["kind"] == "use-after-free" and data["victim"]["address"] == victim
    assert "recorded history: get_borrowed returned the object to the interpreter without raising its count" \
        in data["summary"], data["summary"]
    # Without the proof (the watch was set during the call) nothing is said.
    release["watched_before_call"] = False
    assert "recorded history" not in run_json(py, ["diagnose"], session)["summary"]
