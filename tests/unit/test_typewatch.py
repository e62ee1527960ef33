"""`pylife watch --type NAME` without a debugger: hooks fired on a fake process image.

The fake target evaluates break_at conditions itself, as gdb and lldb do
(reading ob_type of the object in rax), and only calls pylife when they hold
(``FakeTarget.reach``). PyType_Ready is reached with the type in rdi, the
allocation functions' return instructions with the new object in rax.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pylife.commands import CommandFailed, execute
from pylife.record import store
from pylife.record.typewatch import ALLOCATORS, TYPE_READY, name_matches
from pylife.record.watch import HARDWARE_SLOTS
from pylife.session import Session
from pylife.target import NativeFrame, ObjectTypeIs, TargetKind

from .builders import FakePython
from .support import run_json

TID = 4242
RET = 0x44  # offset of the allocators' return instruction in the fake


@pytest.fixture(autouse=True)
def _log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYLIFE_LOG_DIR", str(tmp_path))


def with_allocators(py: FakePython) -> FakePython:
    """libpython's hook points: PyType_Ready, the allocators (one `ret` each), subtype_dealloc."""
    base = 0x7F00_0010_0000
    for index, name in enumerate((TYPE_READY, *ALLOCATORS, "subtype_dealloc")):
        py.t.symbols[name] = base + index * 0x1000
    for name in ALLOCATORS:
        py.t.returns[name] = [RET]
    return py


def running(py: FakePython) -> FakePython:
    """A process with one Python thread (before that, the fake has no process: before `run`)."""
    code = py.code_with_ops("make", "/src/app.py", 10, ["BUILD_LIST", "LOAD_FAST", "STORE_ATTR"], 12)
    py.python_thread(TID, [(code, 1)])
    return py


def python_class(py: FakePython, name: str = "Victim", module: str = "app") -> int:
    """A class statement's type, with typeobject.c's subtype_dealloc as tp_dealloc."""
    address = py.heap_type(name, module)
    py.t.write_u64(address + py.o("PyTypeObject.tp_dealloc"), py.t.symbols["subtype_dealloc"])
    return address


def alloc_frames(py: FakePython, function: str = "PyType_GenericAlloc") -> list[NativeFrame]:
    lib = next(m.path for m in py.t.module_list if "libpython" in m.path)
    return [NativeFrame(py.t.symbols[function] + RET, function, "Objects/typeobject.c", 1731, lib),
            NativeFrame(0x7F00_0020_0000, "object_new", "Objects/typeobject.c", 5000, lib)]


def allocate(py: FakePython, type_address: int, function: str = "PyType_GenericAlloc") -> int:
    """A new instance returned by ``function``: the hooks at its return see it in rax."""
    obj = py.instance(type_address)
    py.t.reach(function, RET, rax=obj, frames=alloc_frames(py, function))
    return obj


def type_watch(py: FakePython, session: Session, *argv: str) -> dict:
    data = run_json(py, ["watch", "--type", *argv], session)
    assert "error" not in data, data
    return data["type_watch"]


# ---- names -------------------------------------------------------------------------


@pytest.mark.parametrize("query,name,qualified,expected", [
    ("Victim", "Victim", "__main__.Victim", True),
    ("Victim", "Victim", "app.Victim", True),
    ("app.Victim", "Victim", "app.Victim", True),
    ("app.Victim", "Victim", "other.Victim", False),
    ("Thing", "buggy.Thing", "buggy.Thing", True),  # a static type's tp_name carries its module
    ("buggy.Thing", "buggy.Thing", "buggy.Thing", True),
    ("Victim", "VictimX", "app.VictimX", False),
    ("Outer.Inner", "Inner", "app.Outer.Inner", False),
])
def test_name_matches(query: str, name: str, qualified: str, expected: bool) -> None:
    assert name_matches(query, name, qualified) is expected


# ---- pending, then armed --------------------------------------------------------------


def test_pending_before_run_then_armed_when_the_class_is_created(py: FakePython) -> None:
    with_allocators(py)
    session = Session(py.t)
    status = type_watch(py, session, "Victim")
    # No process yet: only the (pending) PyType_Ready hook, no allocation hook.
    assert status["state"] == "pending" and status["types"] == []
    assert [b[0] for b in py.t.breakpoints.values()] == [TYPE_READY]
    running(py)
    session.at_safe_point()  # the program started: libpython is loaded
    hooks = {b[0] for b in py.t.breakpoints.values()}
    assert hooks == {TYPE_READY, *ALLOCATORS}
    victim_type = python_class(py)
    other_type = python_class(py, "Other")
    py.t.reach(TYPE_READY, rdi=other_type)
    py.t.reach(TYPE_READY, rdi=victim_type)
    status = run_json(py, ["watches"], session)["type_watches"][0]
    assert status["state"] == "armed"
    assert status["types"] == [{"address": victim_type, "name": "app.Victim"}]
    # A Python class: only tp_alloc (PyType_GenericAlloc) can make its instances.
    for handle in py.t.break_handles("PyType_GenericAlloc"):
        assert py.t.breakpoints[handle][2] == ObjectTypeIs("rax", py.o("PyObject.ob_type"), (victim_type,))
    for name in ALLOCATORS[1:]:
        for handle in py.t.break_handles(name):
            assert py.t.breakpoints[handle][2].types == ()  # type: ignore[union-attr]


def test_each_new_instance_is_watched_from_its_allocation(py: FakePython, tmp_path: Path) -> None:
    running(with_allocators(py))
    session = Session(py.t)
    victim_type = python_class(py)
    type_watch(py, session, "Victim")
    py.t.reach(TYPE_READY, rdi=victim_type)
    other = python_class(py, "Other")
    checks = py.t.condition_checks
    allocate(py, other)  # the debugger's condition is false: pylife is not called
    assert py.t.condition_checks == checks + 1 and session.recorder.watches == {}
    victim = allocate(py, victim_type)
    watch = session.recorder.watches[victim]
    assert watch.phase == "alive" and watch.last == 1
    history = session.recorder.history_of(victim).to_json()  # type: ignore[union-attr]
    assert history["origin"] == "watch --type Victim" and history["initial"] == 1
    allocation = history["allocation"]
    assert allocation["tid"] == TID and allocation["function"] == "PyType_GenericAlloc"
    functions = [f["function"] for f in allocation["stack"]]
    assert functions[:2] == ["PyType_GenericAlloc", "object_new"] and "make" in functions
    assert allocation["python"] == "make (/src/app.py:12)"
    # The JSONL log has it too, for `history --load`.
    (loaded,) = store.load(session.recorder.log.path)
    assert loaded.origin == "watch --type Victim" and loaded.allocation == allocation
    status = run_json(py, ["watches"], session)["type_watches"][0]
    assert (status["matched"], status["watched"], status["skipped"], status["objects"]) == (1, 1, 0, [victim])


def test_busy_slots_are_counted_as_skipped_and_freed_slots_reused(py: FakePython) -> None:
    running(with_allocators(py))
    session = Session(py.t)
    victim_type = python_class(py)
    type_watch(py, session, "Victim")
    py.t.reach(TYPE_READY, rdi=victim_type)
    victims = [allocate(py, victim_type) for _ in range(HARDWARE_SLOTS + 2)]
    assert list(session.recorder.watches) == victims[:HARDWARE_SLOTS]
    status = run_json(py, ["watches"], session)["type_watches"][0]
    assert (status["matched"], status["watched"], status["skipped"]) == (6, 4, 2)
    # The first victim dies: the next new instance gets its slot.
    first = session.recorder.watches[victims[0]]
    py.t.hit(first.handle, 0, alloc_frames(py))
    assert first.phase == "freed"
    late = allocate(py, victim_type)
    assert victims[0] not in session.recorder.watches and late in session.recorder.watches
    assert first.handle not in py.t.watchpoints  # the watchpoint was given back
    text = execute(session, ["watches"])
    assert "7 seen, 5 watched, 2 skipped" in text


def test_max_disarms_the_allocation_hooks(py: FakePython) -> None:
    running(with_allocators(py))
    session = Session(py.t)
    victim_type = python_class(py)
    type_watch(py, session, "Victim", "--max", "2")
    py.t.reach(TYPE_READY, rdi=victim_type)
    first, second = allocate(py, victim_type), allocate(py, victim_type)
    assert set(session.recorder.watches) == {first, second}
    assert all(b[2].types == () for b in py.t.breakpoints.values() if b[0] in ALLOCATORS)  # type: ignore[union-attr]
    allocate(py, victim_type)
    status = run_json(py, ["watches"], session)["type_watches"][0]
    assert (status["state"], status["matched"], status["watched"], status["skipped"]) == ("done", 2, 2, 0)


def test_a_static_type_readied_later_uses_every_allocator(py: FakePython) -> None:
    running(with_allocators(py))
    session = Session(py.t)
    type_watch(py, session, "buggy.Thing")
    thing = py.static_type("buggy.Thing", flags=0, basicsize=32, itemsize=0, metatype=0)  # ob_type NULL before Ready
    py.t.reach(TYPE_READY, rdi=thing)
    for name in ALLOCATORS:
        (handle,) = py.t.break_handles(name)
        assert py.t.breakpoints[handle][2].types == (thing,)  # type: ignore[union-attr]
    py.t.write_u64(thing + py.o("PyObject.ob_type"), py.types["type"])  # PyType_Ready set it
    obj = allocate(py, thing, "_PyObject_New")
    assert session.recorder.history_of(obj).type  # type: ignore[union-attr] == "buggy.Thing"


def test_an_existing_class_is_found_at_a_stop(py: FakePython) -> None:
    running(with_allocators(py))
    victim_type = python_class(py, "Victim", "app")
    session = Session(py.t)
    status = type_watch(py, session, "app.Victim")
    assert status["state"] == "armed" and status["types"] == [{"address": victim_type, "name": "app.Victim"}]
    victim = allocate(py, victim_type)
    assert victim in session.recorder.watches


def test_unwatch_type_removes_its_hooks(py: FakePython) -> None:
    running(with_allocators(py))
    session = Session(py.t)
    type_watch(py, session, "Victim")
    assert py.t.breakpoints
    data = run_json(py, ["unwatch", "--type", "Victim"], session)
    assert data["type_watch"]["name"] == "Victim" and py.t.breakpoints == {}
    assert run_json(py, ["watches"], session)["type_watches"] == []


@pytest.mark.parametrize("argv,message", [
    (["--type", "Vic tim"], "--type wants a type name"),
    (["--type", "Victim", "0x1000"], "one of them"),
    (["--type", "Victim", "--max", "-1"], "--max must be >= 0"),
])
def test_bad_input_is_one_line(py: FakePython, argv: list[str], message: str) -> None:
    with pytest.raises(CommandFailed, match=message):
        execute(Session(py.t), ["watch", *argv])


def test_core_files_refuse(key: tuple[int, int]) -> None:
    py = FakePython(key, kind=TargetKind.CORE)
    with pytest.raises(CommandFailed, match="core"):
        execute(Session(py.t), ["watch", "--type", "Victim"])


def test_twice_is_refused(py: FakePython) -> None:
    session = Session(with_allocators(py).t)
    type_watch(py, session, "Victim")
    with pytest.raises(CommandFailed, match="already watched"):
        execute(session, ["watch", "--type", "Victim"])


def test_garbage_at_the_type_ready_hook_is_ignored(py: FakePython) -> None:
    running(with_allocators(py))
    session = Session(py.t)
    type_watch(py, session, "Victim")
    for rdi in (0, 0x10, 0xDEAD_BEEF_0000, py.int(7)):
        assert py.t.reach(TYPE_READY, rdi=rdi) == [False]
    status = run_json(py, ["watches"], session)["type_watches"][0]
    assert status["state"] == "pending" and status["types"] == []


def test_leaks_report_says_what_was_skipped(py: FakePython) -> None:
    running(with_allocators(py))
    session = Session(py.t)
    victim_type = python_class(py)
    type_watch(py, session, "Victim")
    py.t.reach(TYPE_READY, rdi=victim_type)
    for _ in range(HARDWARE_SLOTS + 1):
        allocate(py, victim_type)
    (status,) = run_json(py, ["leaks"], session)["type_watches"]
    assert (status["matched"], status["watched"], status["skipped"]) == (5, 4, 1)
    assert "5 seen, 4 watched, 1 skipped" in execute(session, ["leaks"])


def test_the_allocation_is_the_first_reference_in_the_balance(py: FakePython) -> None:
    running(with_allocators(py))
    session = Session(py.t)
    victim_type = python_class(py)
    type_watch(py, session, "Victim")
    py.t.reach(TYPE_READY, rdi=victim_type)
    victim = allocate(py, victim_type)
    (analysis,) = run_json(py, ["history", "--balance"], session)["objects"]
    assert analysis["address"] == victim
    (site,) = analysis["leak_candidates"]  # nothing released it yet: the allocating Python line holds it
    assert (site["function"], site["increments"], site["unreleased"]) == ("make", 1, 1)
    assert "Watched from its allocation" in analysis["notes"][0]
