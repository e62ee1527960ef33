"""A Python frame's locals and value stack (pylife.cpython.frame_slots), and diagnose searching them for the victim."""

from __future__ import annotations

import pytest

from pylife.cpython.frame_slots import MAX_STACK, frame_slots
from pylife.cpython.frames import CodeCache, PyFrame, first_frame, walk
from pylife.cpython.objects import Objects

from .builders import FakeObmalloc, FakePython
from .support import objects_of
from .test_diagnose import _diagnose, _freed_instance, _object, _stop
from .test_pyexpr import _write_code_names

TID = 4242
LOCALS = ["a", "victim"]
STACK_SIZE = 3


def _frame(py: FakePython, local_values: list[int], stack_values: list[int], depth: int | None) -> PyFrame:
    """The newest Python frame of thread TID: locals a and victim, co_stacksize 3, its top ``depth``
    slots up (None: the frame is running, its top is not saved)."""
    code = py.code_with_ops("f", "/src/app.py", 1, ["LOAD_FAST"], 2)
    _write_code_names(py, code, LOCALS, [], [])
    py.t.write_i32(code + py.o("PyCodeObject.co_stacksize"), STACK_SIZE)
    tstate = py.python_thread(TID, [(code, 0)], slots=len(LOCALS) + STACK_SIZE)
    objects = objects_of(py)
    frame = next(walk(objects.mem, objects, CodeCache(objects), first_frame(objects.mem, objects, tstate)))
    old_style = py.key < (3, 11)
    base = frame.address + py.o("PyFrameObject.f_localsplus" if old_style else "_PyInterpreterFrame.localsplus")
    for index, value in enumerate(local_values + stack_values):
        py.t.write_u64(base + 8 * index, value)
    stack = base + 8 * len(LOCALS)
    if "_PyInterpreterFrame.stackpointer" in py.off:  # 3.14+: a pointer
        py.t.write_u64(frame.address + py.o("_PyInterpreterFrame.stackpointer"), 0 if depth is None else stack + 8 * depth)
    elif "_PyInterpreterFrame.stacktop" in py.off:  # 3.11-3.13: an index into localsplus, -1 while running
        py.t.write_i32(frame.address + py.o("_PyInterpreterFrame.stacktop"), -1 if depth is None else len(LOCALS) + depth)
    elif "PyFrameObject.f_stackdepth" in py.off:  # 3.10: a count, -1 while running
        py.t.write_i32(frame.address + py.o("PyFrameObject.f_stackdepth"), -1 if depth is None else depth)
    else:  # 3.8/3.9: f_stacktop, NULL while running
        py.t.write_u64(frame.address + py.o("PyFrameObject.f_stacktop"), 0 if depth is None else stack + 8 * depth)
    return frame


def _objects(py: FakePython) -> Objects:
    return objects_of(py)


def test_locals_and_the_slots_under_the_top_hold_references(py: FakePython) -> None:
    one, two, three, four = (py.int(n) for n in (1001, 1002, 1003, 1004))
    frame = _frame(py, [one, two], [three, four, 0], depth=1)
    slots = [(s.value, s.name, s.live) for s in frame_slots(_objects(py), frame)]
    assert slots == [(one, "local a", True), (two, "local victim", True), (three, "value stack slot 0", True),
                     (four, "leftover value stack slot 1", False)]


def test_a_running_frame_has_only_leftovers(py: FakePython) -> None:
    one, three = py.int(1001), py.int(1003)
    frame = _frame(py, [one, 0], [three, 0, 0], depth=None)
    slots = [(s.value, s.name, s.live) for s in frame_slots(_objects(py), frame)]
    assert slots == [(one, "local a", True), (three, "leftover value stack slot 0", False)]


@pytest.mark.parametrize("hostile", ["top beyond the stack", "huge co_stacksize", "no code"])
def test_hostile_frames_are_bounded(py: FakePython, hostile: str) -> None:
    one, three = py.int(1001), py.int(1003)
    frame = _frame(py, [one, 0], [three, 0, 0], depth=2)
    assert frame.code is not None
    if hostile == "top beyond the stack":
        frame = _frame(py, [one, 0], [three, 0, 0], depth=STACK_SIZE + 50)
        assert [s.live for s in frame_slots(_objects(py), frame)] == [True, False]
    elif hostile == "huge co_stacksize":
        py.t.write_i32(frame.code.address + py.o("PyCodeObject.co_stacksize"), MAX_STACK + 1)
        assert [s.name for s in frame_slots(_objects(py), frame)] == ["local a"]
    else:
        assert frame_slots(_objects(py), PyFrame(frame.address, None, None, None, 0)) == []


@pytest.mark.parametrize("sent", [False, True], ids=["fault", "sent-by-kill"])
def test_diagnose_finds_a_victim_only_a_python_frame_holds(py: FakePython, sent: bool) -> None:
    heap = FakeObmalloc(py)
    victim = _freed_instance(py, heap)
    _frame(py, [0, victim], [], depth=0)
    # kill(): si_code SI_USER (0), and si_addr overlays the sender's pid (here under 4096: no NULL dereference).
    _stop(py, "SIGSEGV", code=0 if sent else 1, fault=3969 if sent else 0x7F70_DEAD_0000,
          frames=[("some_c_function", [])], registers={"rbx": victim})  # a register too: the local is the evidence
    data = _diagnose(py)
    assert data["kind"] == "use-after-free", data["summary"]
    assert f"at {victim:#x} is still held (local victim of f (Python frame #0))" in data["evidence"]
    assert any("sent by a process (si_code 0)" in n for n in data["notes"]) == sent
    found = _object(data, victim)
    assert found["verdict"] == "FREED" and found["type"] == "__main__.Victim"
    assert data["victim"]["source"] == "local victim of f (Python frame #0)"


def test_a_leftover_slot_is_shown_but_decides_nothing(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    victim = _freed_instance(py, heap)
    _frame(py, [0, 0], [victim, 0, 0], depth=None)
    _stop(py, "SIGSEGV", fault=0x7F70_DEAD_0000, frames=[("some_c_function", [])])
    data = _diagnose(py)
    assert data["kind"] == "unknown", data["summary"]
    assert _object(data, victim)["source"] == "leftover value stack slot 0 of f (Python frame #0)"
    assert data["victim"] is None
