"""The watch recorder without a debugger: watchpoint hits simulated on a fake process image.

A hit is simulated the way a debugger delivers one: the new count is written
into the image, the writing thread's C stack is set, then the on_hit callback
the recorder registered through ``Target.watch_write`` is called
(``FakeTarget.hit``). Pool-resident objects (``FakePython.pool``) make the
allocator's view real: free-list links, blocks handed out again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pylife.commands import CommandFailed, execute
from pylife.record import events as ev
from pylife.record import recorder as recorder_module
from pylife.record import store
from pylife.record.watch import HARDWARE_SLOTS, Watch
from pylife.session import Session
from pylife.target import NativeFrame, TargetKind

from .builders import FakePython, Pool
from .support import run_json

EVAL = "_PyEval_EvalFrameDefault"
EXTENSION = "/work/build/buggy.cpython-3xx-x86_64-linux-gnu.so"
PYTHON_TID = 4242
EVAL_SP = 0x7FFD_0000_1000


@pytest.fixture(autouse=True)
def _log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default JSONL log goes to the test's directory, never to /tmp/pylife."""
    monkeypatch.setenv("PYLIFE_LOG_DIR", str(tmp_path))


# ---- C frames ---------------------------------------------------------------------


def libpython(py: FakePython) -> str:
    return next(m.path for m in py.target.module_list if "libpython" in m.path)


def core(py: FakePython, function: str, pc: int = 0x7F00_0010_0000, sp: int | None = None) -> NativeFrame:
    """A frame of the interpreter core (libpythonX.Y.so)."""
    return NativeFrame(pc, function, "Objects/object.c", 100, libpython(py), sp)


def ext(function: str, pc: int = 0x7E80_0000_1000, line: int = 42) -> NativeFrame:
    """A frame of a C extension."""
    return NativeFrame(pc, function, "buggy.c", line, EXTENSION)


def eval_frame(py: FakePython, sp: int = EVAL_SP) -> NativeFrame:
    return core(py, EVAL, pc=0x7F00_0020_0000, sp=sp)


def by_eval_loop(py: FakePython) -> list[NativeFrame]:
    """Py_INCREF inlined into the eval loop, then the loop's callers."""
    return [core(py, "Py_INCREF"), eval_frame(py), core(py, "PyEval_EvalCode"), core(py, "Py_RunMain"),
            NativeFrame(0x401000, "main", None, None, "/root/.pyenv/bin/python3")]


def by_extension(py: FakePython, function: str = "leak_one") -> list[NativeFrame]:
    """An extension's function writes the count (Py_INCREF inlined into it), called by the eval loop."""
    return [ext("Py_INCREF"), ext(function), core(py, "cfunction_vectorcall_O"), eval_frame(py),
            core(py, "PyEval_EvalCode")]


# ---- sessions -----------------------------------------------------------------------


def watch(py: FakePython, address: int, *options: str, session: Session | None = None) -> tuple[Session, int, dict[str, Any]]:
    """`pylife watch ADDR --json`: (session, the armed watchpoint's handle, the JSON line)."""
    session = session or Session(py.target)
    before = set(py.t.watchpoints)
    data = run_json(py, ["watch", hex(address), *options], session)
    assert "error" not in data, data
    (handle,) = set(py.t.watchpoints) - before
    return session, handle, data


def watch_of(session: Session, address: int) -> Watch:
    return session.recorder.watches[address]


def kinds(session: Session, address: int) -> list[str]:
    return [e.kind for e in session.recorder.history_of(address).events]


def python_thread(py: FakePython) -> int:
    """Thread PYTHON_TID runs f() at line 12 (LOAD_FAST), called from <module> at line 3 (BUILD_LIST).
    Returns its thread state."""
    inner = py.code_with_ops("f", "/src/app.py", 10, ["BUILD_LIST", "LOAD_FAST", "STORE_ATTR"], 12)
    outer = py.code_with_ops("<module>", "/src/app.py", 1, ["STORE_ATTR", "BUILD_LIST"], 3)
    return py.python_thread(PYTHON_TID, [(inner, 1), (outer, 1)])


# ---- pool-resident objects ---------------------------------------------------------------


def float_in_pool(py: FakePython, refcnt: int = 1) -> tuple[int, Pool]:
    """A float alone in a 32-byte pool, after one other block was freed (the free list is not empty)."""
    pool = py.pool(32)
    spare = pool.alloc(32)
    obj = py.new_object(py.types["float"], 24, refcnt=refcnt, arena=pool)
    py.t.write_f64(obj + py.o("PyFloatObject.ob_fval"), 2.5)
    pool.free(spare)
    return obj, pool


def tuple_in_pool(py: FakePython) -> tuple[int, Pool]:
    """A GC'd 1-tuple (its block starts with the GC head) in a pool."""
    pool = py.pool(64)
    obj = py.new_object(py.types["tuple"], 32, arena=pool, generation=None)
    py.t.write_i64(obj + py.o("PyVarObject.ob_size"), 1)
    py.t.write_u64(obj + py.o("PyTupleObject.ob_item"), py.none)
    return obj, pool


def block_of(py: FakePython, obj: int) -> int:
    flags = py.type_flags[py.t.peek_u64(obj + py.o("PyObject.ob_type"))]
    return obj - (16 if flags & (1 << 14) else 0)


# ---- pylife watch ---------------------------------------------------------------------------


def test_watch_records_initial_refcount_and_type(py: FakePython, tmp_path: Path) -> None:
    obj = py.int(5, refcnt=3)
    session, handle, data = watch(py, obj)
    assert set(data) == {"address", "type", "refcnt", "stop_on", "follow", "occupancy", "slots_used", "slots_total", "log",
                         "warnings"}
    assert (data["address"], data["type"], data["refcnt"]) == (obj, "int", 3)
    assert (data["slots_used"], data["slots_total"], data["stop_on"], data["warnings"]) == (1, HARDWARE_SLOTS, "anomaly", [])
    assert Path(data["log"]).parent == tmp_path
    # The watchpoint covers the whole 8-byte ob_refcnt.
    assert py.t.watchpoints[handle][:2] == (obj + py.o("PyObject.ob_refcnt"), 8)
    history = session.recorder.history_of(obj)
    assert (history.type, history.initial, history.events, history.freed_at, history.closed) == ("int", 3, [], None, None)
    first = json.loads(Path(data["log"]).read_text().splitlines()[0])
    assert first == {"record": "watch", "address": obj, "occupancy": 0, "type": "int", "initial": 3, "allocated_at": None}


def test_watch_text_names_the_slots_and_the_log(py: FakePython) -> None:
    obj = py.float(1.5, refcnt=2)
    text = execute(Session(py.target), ["watch", hex(obj), "--stop-on", "zero"])
    assert f"watching {obj:#x} (float, refcount 2); stop on zero; hardware slots 1/4 used" in text
    assert "history log: " in text


def test_watch_refuses_on_a_core(py: FakePython) -> None:
    py.t.kind = TargetKind.CORE
    obj = py.int(5)
    session = Session(py.target)
    with pytest.raises(CommandFailed) as caught:
        execute(session, ["watch", hex(obj)])
    message = str(caught.value)
    assert message.startswith("pylife") and "\n" not in message and "core" in message
    assert json.loads(execute(session, ["watch", hex(obj), "--json"])).keys() == {"error"}
    assert py.t.watchpoints == {} and session.recorder.watches == {} and session.recorder.histories == {}


def test_fifth_watch_is_refused_naming_the_four_in_use(py: FakePython) -> None:
    session = Session(py.target)
    objects = [py.int(i, refcnt=2) for i in range(10, 15)]
    for count, obj in enumerate(objects[:4], 1):
        _session, _handle, data = watch(py, obj, session=session)
        assert data["slots_used"] == count
    with pytest.raises(CommandFailed) as caught:
        execute(session, ["watch", hex(objects[4])])
    message = str(caught.value)
    assert "\n" not in message and "all 4 hardware watchpoint slots are in use" in message
    for obj in objects[:4]:
        assert f"{obj:#x}" in message
    assert len(py.t.watchpoints) == 4 and session.recorder.history_of(objects[4]) is None
    listing = run_json(py, ["watches"], session)
    assert (listing["slots_used"], listing["slots_total"]) == (4, 4)
    assert [w["address"] for w in listing["watches"]] == objects[:4]
    # Freeing a slot makes room.
    assert run_json(py, ["unwatch", hex(objects[0])], session)["slots_used"] == 3
    assert watch(py, objects[4], session=session)[2]["slots_used"] == 4


def test_duplicate_watch_is_refused(py: FakePython) -> None:
    obj = py.int(7, refcnt=2)
    session, _handle, _data = watch(py, obj)
    with pytest.raises(CommandFailed, match="already watched"):
        execute(session, ["watch", hex(obj)])
    assert len(py.t.watchpoints) == 1


def test_immortal_objects_are_refused_on_3_12_and_later(py: FakePython) -> None:
    """An immortal count never changes: a watch would take a slot and record nothing."""
    for obj in (py.none, py.int(123456, refcnt=py.immortal_refcnt())):
        if py.key >= (3, 12):
            data = run_json(py, ["watch", hex(obj)])
            assert set(data) == {"error"} and "immortal" in data["error"] and f"{obj:#x}" in data["error"], data
            assert "records nothing" in data["error"] or "record nothing" in data["error"]
        else:
            _session, _handle, data = watch(py, obj)
            assert data["warnings"] == []
    assert (py.t.watchpoints == {}) == (py.key >= (3, 12))


def test_slot_accounting_counts_the_users_own_watchpoints(py: FakePython) -> None:
    """One hardware watchpoint set by hand: pylife reports it and refuses the 4th watch up front."""
    py.t.user_watchpoints = 1
    session = Session(py.target)
    objects = [py.value([i]) for i in range(4)]
    for number, obj in enumerate(objects[:3], start=1):
        _session, _handle, data = watch(py, obj, session=session)
        assert data["slots_used"] == number + 1 and data["slots_total"] == HARDWARE_SLOTS
    data = run_json(py, ["watch", hex(objects[3])], session)
    assert "error" in data and "1 set in fake by hand" in data["error"], data
    assert run_json(py, ["watches"], session)["slots_used"] == HARDWARE_SLOTS
    assert len(py.t.watchpoints) == 3


def test_watch_of_a_non_object_is_one_line_error(py: FakePython) -> None:
    data = run_json(py, ["watch", "0x1000"])
    assert set(data) == {"error"} and py.t.watchpoints == {}


# ---- hits: kinds, deltas, writer, op ------------------------------------------------------


def test_increments_and_decrements(py: FakePython) -> None:
    obj = py.int(99, refcnt=3)
    session, handle, _ = watch(py, obj)
    for value in (4, 5, 4, 2):
        assert py.t.hit(handle, value, by_extension(py)) is False
    events = session.recorder.history_of(obj).events
    assert [(e.kind, e.old, e.new, e.delta) for e in events] == [
        (ev.INCREF, 3, 4, 1), (ev.INCREF, 4, 5, 1), (ev.DECREF, 5, 4, -1), (ev.DECREF, 4, 2, -2)]
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert all(e.tid == 1 and e.message is None for e in events)
    assert watch_of(session, obj).last == 2 and watch_of(session, obj).phase == "alive"


def test_unchanged_value_records_nothing(py: FakePython) -> None:
    obj = py.int(99, refcnt=3)
    session, handle, _ = watch(py, obj)
    assert py.t.hit(handle, 3, by_extension(py)) is False
    assert session.recorder.history_of(obj).events == [] and session.recorder.seq == 0


def test_writer_is_the_first_frame_that_is_not_an_inline_refcount_helper(py: FakePython) -> None:
    obj = py.int(99, refcnt=3)
    session, handle, _ = watch(py, obj)
    frames = [ext("_Py_INCREF"), ext("Py_INCREF"), ext("Py_NewRef"), ext("take_ref"), core(py, "cfunction_call")]
    py.t.hit(handle, 4, frames)
    frames = [core(py, "_Py_DECREF"), core(py, "Py_XDECREF"), core(py, "list_dealloc"), core(py, "_Py_Dealloc")]
    py.t.hit(handle, 3, frames)
    py.t.hit(handle, 2, [ext("Py_DECREF")])  # only helpers: no writer
    assert [e.writer for e in session.recorder.history_of(obj).events] == ["take_ref", "list_dealloc", None]


def test_op_and_python_line_when_the_eval_loop_writes(py: FakePython) -> None:
    python_thread(py)
    obj = py.int(99, refcnt=3)
    session, handle, _ = watch(py, obj)
    py.t.hit(handle, 4, by_eval_loop(py), tid=PYTHON_TID)
    event = session.recorder.history_of(obj).events[0]
    assert (event.tid, event.writer, event.op, event.python) == (PYTHON_TID, EVAL, "LOAD_FAST", "f (/src/app.py:12)")
    # The merged stack: the eval loop's activation replaced by its Python frame.
    assert [(f["kind"], f["function"]) for f in event.stack] == [
        ("native", "Py_INCREF"), ("python", "f"), ("native", "PyEval_EvalCode"), ("native", "Py_RunMain"),
        ("native", "main"), ("python", "<module>")]
    assert event.stack[1] == {"kind": "python", "function": "f", "file": "/src/app.py", "line": 12, "module": None}
    assert event.stack[0]["module"] == Path(libpython(py)).name


def test_op_is_null_when_an_extension_function_writes(py: FakePython) -> None:
    python_thread(py)
    obj = py.int(99, refcnt=3)
    session, handle, _ = watch(py, obj)
    py.t.hit(handle, 4, by_extension(py, "leak_one"), tid=PYTHON_TID)
    # A core function that never reaches an eval loop in the captured frames: no op either.
    py.t.hit(handle, 5, [core(py, "Py_INCREF"), core(py, "list_append")], tid=PYTHON_TID)
    # Core frames up to the eval loop (list_subscript for BINARY_SUBSCR): op filled.
    py.t.hit(handle, 6, [core(py, "Py_INCREF"), core(py, "list_subscript"), eval_frame(py)], tid=PYTHON_TID)
    events = session.recorder.history_of(obj).events
    assert [(e.writer, e.op) for e in events] == [
        ("leak_one", None), ("list_append", None), ("list_subscript", "LOAD_FAST")]
    assert all(e.python == "f (/src/app.py:12)" for e in events)


def test_thread_without_python_frames_has_no_python_line(py: FakePython) -> None:
    obj = py.int(99, refcnt=3)
    session, handle, _ = watch(py, obj)
    py.t.hit(handle, 4, by_eval_loop(py), tid=77)
    event = session.recorder.history_of(obj).events[0]
    assert (event.tid, event.op, event.python) == (77, None, None)
    assert [f["kind"] for f in event.stack] == ["native"] * 5


def test_depth_bounds_the_c_frames(py: FakePython) -> None:
    obj = py.int(99, refcnt=3)
    session, handle, _ = watch(py, obj, "--depth", "2")
    py.t.hit(handle, 4, by_extension(py))
    assert [f["function"] for f in session.recorder.history_of(obj).events[0].stack] == ["Py_INCREF", "leak_one"]


def test_frames_older_than_the_eval_loop_are_reused_between_hits(py: FakePython) -> None:
    obj = py.int(99, refcnt=3)
    session, handle, _ = watch(py, obj)
    calls = py.t.unwind_calls
    py.t.hit(handle, 4, by_eval_loop(py))
    assert py.t.unwind_calls - calls == 2  # up to the eval loop, then the whole stack once
    calls = py.t.unwind_calls
    py.t.hit(handle, 5, by_extension(py))  # same eval-loop activation (pc, sp)
    assert py.t.unwind_calls - calls == 1
    events = session.recorder.history_of(obj).events
    assert [f["function"] for f in events[1].stack] == [
        "Py_INCREF", "leak_one", "cfunction_vectorcall_O", EVAL, "PyEval_EvalCode", "Py_RunMain", "main"]


# ---- anomalies and the free -----------------------------------------------------------------


def test_negative_count_is_an_anomaly_and_stops(py: FakePython) -> None:
    obj = py.int(99, refcnt=1)
    session, handle, _ = watch(py, obj)
    assert py.t.hit(handle, -1, by_extension(py, "drop_twice")) is True
    event = session.recorder.history_of(obj).events[0]
    assert (event.kind, event.old, event.new, event.writer) == (ev.NEGATIVE, 1, -1, "drop_twice")
    assert event.message is not None and "went negative" in event.message and "drop_twice" in event.message
    assert session.recorder.last_stop_message == f"pylife: {event.message}"


def test_negative_count_does_not_stop_with_stop_on_never(py: FakePython) -> None:
    obj = py.int(99, refcnt=1)
    session, handle, _ = watch(py, obj, "--stop-on", "never")
    assert py.t.hit(handle, -1, by_extension(py)) is False
    assert kinds(session, obj) == [ev.NEGATIVE] and session.recorder.last_stop_message is None


def test_zero_sets_freed_at_and_the_phase(py: FakePython) -> None:
    obj = py.int(99, refcnt=2)
    session, handle, _ = watch(py, obj)
    py.t.hit(handle, 1, by_extension(py))
    assert py.t.hit(handle, 0, [core(py, "_Py_DECREF"), core(py, "tupledealloc")]) is False  # anomaly: no stop
    history = session.recorder.history_of(obj)
    assert kinds(session, obj) == [ev.DECREF, ev.ZERO]
    assert history.freed_at == 2 and history.closed is None
    assert watch_of(session, obj).phase == "freed"
    phases = {w["address"]: w["phase"] for w in run_json(py, ["watches"], session)["watches"]}
    assert phases == {obj: "freed"}


@pytest.mark.parametrize("build", [float_in_pool, tuple_in_pool], ids=["float", "tuple"])
def test_block_handed_to_a_new_object_closes_the_history(py: FakePython, build: Any) -> None:
    obj, pool = build(py)
    session, handle, _ = watch(py, obj)
    py.t.hit(handle, 0, [core(py, "_Py_DECREF"), core(py, "frame_dealloc")])
    block = block_of(py, obj)
    pool.free(block)  # the link lands on ob_refcnt only for objects without a GC head
    if py.t.peek_u64(obj) != 0:
        assert py.t.hit(handle, py.t.peek_u64(obj), [core(py, "pymalloc_free"), core(py, "_PyObject_Free")]) is False
    assert pool.reuse() == block
    py.t.write_u64(obj + py.o("PyObject.ob_type"), py.types["float"])
    assert py.t.hit(handle, 1, [core(py, "PyFloat_FromDouble"), eval_frame(py)]) is False  # not an anomaly
    history = session.recorder.history_of(obj)
    reuse = history.events[-1]
    assert reuse.kind == ev.REUSE
    assert history.closed == reuse.message
    assert history.closed.startswith(f"memory reused by a new float object at event {reuse.seq}")
    assert obj not in session.recorder.watches
    assert session.recorder.pending_removals == [handle] and handle in py.t.watchpoints
    # Further writes record nothing; the watchpoint goes at the next safe point.
    assert py.t.hit(handle, 2, by_eval_loop(py)) is False and history.events[-1] is reuse
    session.apply_pending()
    assert handle not in py.t.watchpoints and session.recorder.pending_removals == []
    assert run_json(py, ["watches"], session)["slots_used"] == 0
    lines = [json.loads(line) for line in Path(session.recorder.log.path).read_text().splitlines()]
    assert lines[-1] == {"record": "close", "address": obj, "occupancy": 0, "freed_at": history.freed_at,
                         "closed": history.closed}


def test_allocator_writes_after_the_free(py: FakePython) -> None:
    obj, pool = float_in_pool(py)
    session, handle, _ = watch(py, obj, "--stop-on", "free")
    assert py.t.hit(handle, 0, [core(py, "_Py_DECREF"), core(py, "float_dealloc")]) is False
    pool.free(obj)
    link = py.t.peek_u64(obj)
    assert link != 0
    assert py.t.hit(handle, link, [core(py, "pymalloc_free"), core(py, "_PyObject_Free"), core(py, "float_dealloc")]) is True
    event = session.recorder.history_of(obj).events[-1]
    assert (event.kind, event.writer, event.new) == (ev.ALLOCATOR, "pymalloc_free", link)
    assert session.recorder.last_stop_message == f"pylife: {obj:#x} was returned to the allocator by pymalloc_free"
    # The debug allocator's fill (memset called from _PyMem_DebugRawFree) is the allocator too.
    assert py.t.hit(handle, 0x7DDD_DDDD_DDDD_DDDD, [core(py, "memset"), core(py, "_PyMem_DebugRawFree")]) is True
    assert kinds(session, obj) == [ev.ZERO, ev.ALLOCATOR, ev.ALLOCATOR]
    assert watch_of(session, obj).phase == "freed"


def test_write_while_the_block_is_on_the_free_list_is_a_use_after_free(py: FakePython) -> None:
    obj, pool = float_in_pool(py)
    session, handle, _ = watch(py, obj)
    py.t.hit(handle, 0, [core(py, "_Py_DECREF"), core(py, "float_dealloc")])
    pool.free(obj)
    link = py.t.peek_u64(obj)
    py.t.hit(handle, link, [core(py, "pymalloc_free"), core(py, "_PyObject_Free")])
    assert py.t.hit(handle, link + 1, by_extension(py, "use_stale")) is True
    event = session.recorder.history_of(obj).events[-1]
    assert (event.kind, event.writer) == (ev.USE_AFTER_FREE, "use_stale")
    assert event.message is not None and event.message.startswith("use after free: use_stale wrote the refcount")
    assert "freed at event 1" in event.message
    assert session.recorder.last_stop_message == f"pylife: {event.message}"
    assert watch_of(session, obj).phase == "freed" and session.recorder.history_of(obj).closed is None


def test_decrement_of_a_freed_object(py: FakePython) -> None:
    obj, pool = float_in_pool(py)
    session, handle, _ = watch(py, obj)
    py.t.hit(handle, 0, by_extension(py, "over_decref"))
    pool.free(obj)
    link = py.t.peek_u64(obj)
    py.t.hit(handle, link, [core(py, "pymalloc_free")])
    assert py.t.hit(handle, link - 1, [ext("Py_DECREF"), ext("steal_then_decref")]) is True
    event = session.recorder.history_of(obj).events[-1]
    assert (event.kind, event.writer) == (ev.DECREF_AFTER_FREE, "steal_then_decref")
    assert event.message is not None and "decref of freed object" in event.message and "freed at event 1" in event.message


def test_decrement_of_a_freed_gc_object_before_any_allocator_write(py: FakePython) -> None:
    obj, pool = tuple_in_pool(py)
    session, handle, _ = watch(py, obj)
    py.t.hit(handle, 0, by_extension(py))
    pool.free(block_of(py, obj))  # the link goes into the GC head: ob_refcnt stays 0
    assert py.t.peek_u64(obj) == 0
    assert py.t.hit(handle, -1, by_extension(py, "decref_again")) is True
    assert kinds(session, obj) == [ev.ZERO, ev.DECREF_AFTER_FREE]  # not NEGATIVE: it was freed


def test_large_block_reuse_is_recognised_by_the_new_object_writer(py: FakePython) -> None:
    """Blocks above 512 bytes are not pymalloc's: reuse is told by who writes 1."""
    obj = py.bytes(b"x" * 600)
    session, handle, _ = watch(py, obj)
    py.t.hit(handle, 0, by_extension(py))
    assert py.t.hit(handle, 1, by_extension(py, "bad_write")) is True  # 1, but no object initialiser
    assert kinds(session, obj)[-1] == ev.USE_AFTER_FREE
    py.t.hit(handle, 0x55, by_extension(py, "bad_write"))
    assert py.t.hit(handle, 1, [core(py, "_Py_NewReference"), core(py, "PyBytes_FromStringAndSize")]) is False
    assert kinds(session, obj)[-1] == ev.REUSE
    assert session.recorder.history_of(obj).closed.startswith("memory reused by a new bytes object")


# ---- --stop-on and --max-events ------------------------------------------------------------


def _stops(py: FakePython, *options: str) -> list[bool]:
    """Stops for: incref, decref, zero, allocator write, use after free."""
    obj, pool = float_in_pool(py, refcnt=2)
    _session, handle, _ = watch(py, obj, *options)
    stops = [py.t.hit(handle, 3, by_eval_loop(py)), py.t.hit(handle, 2, by_eval_loop(py)),
             py.t.hit(handle, 0, by_extension(py))]
    pool.free(obj)
    link = py.t.peek_u64(obj)
    stops.append(py.t.hit(handle, link, [core(py, "pymalloc_free")]))
    stops.append(py.t.hit(handle, link + 1, by_extension(py, "use_stale")))
    return stops


@pytest.mark.parametrize(("stop_on", "expected"), [
    ("anomaly", [False, False, False, False, True]),
    ("change", [True, True, True, True, True]),
    ("zero", [False, False, True, False, True]),
    ("free", [False, False, False, True, True]),
    ("never", [False, False, False, False, False]),
])
def test_stop_on(stop_on: str, expected: list[bool]) -> None:
    assert _stops(FakePython.fresh((3, 12)), "--stop-on", stop_on) == expected


def test_stop_messages(py: FakePython) -> None:
    obj = py.int(99, refcnt=2)
    session, handle, _ = watch(py, obj, "--stop-on", "change")
    py.t.hit(handle, 3, by_extension(py, "take"))
    assert session.recorder.last_stop_message == f"pylife: refcount of {obj:#x}: 2 -> 3 (incref) in take"
    session2, handle2, _ = watch(py, py.int(98, refcnt=1), "--stop-on", "zero")
    py.t.hit(handle2, 0, by_extension(py, "drop"))
    assert session2.recorder.last_stop_message is not None
    assert "reached 0 in drop: it is being freed" in session2.recorder.last_stop_message


def test_max_events_stops_once(py: FakePython) -> None:
    obj = py.int(99, refcnt=2)
    session, handle, _ = watch(py, obj, "--max-events", "2")
    assert [py.t.hit(handle, v, by_eval_loop(py)) for v in (3, 4, 5, 6)] == [False, True, False, False]
    assert len(session.recorder.history_of(obj).events) == 4


def test_bad_watch_options_are_one_line_errors(py: FakePython) -> None:
    obj = py.int(99, refcnt=2)
    for options in (["--max-events", "-1"], ["--depth", "0"], ["--stop-on", "sometimes"]):
        data = run_json(py, ["watch", hex(obj), *options])
        assert set(data) == {"error"}, options
    assert py.t.watchpoints == {}


# ---- failures inside the hit never escape on_hit ---------------------------------------------


def test_unreadable_memory_during_a_hit_stops_with_a_message(py: FakePython) -> None:
    obj, pool = float_in_pool(py)
    session, handle, _ = watch(py, obj)
    py.t.unmap(pool.address)
    assert py.t.fire(handle) is True
    message = session.recorder.last_stop_message
    assert message is not None and message.startswith(f"pylife: watch {obj:#x}: cannot read") and "\n" not in message
    assert session.recorder.history_of(obj).events == []


def test_unreadable_memory_with_stop_on_never_continues(py: FakePython) -> None:
    obj, pool = float_in_pool(py)
    session, handle, _ = watch(py, obj, "--stop-on", "never")
    py.t.unmap(pool.address)
    assert py.t.fire(handle) is False
    assert session.recorder.last_stop_message is not None


def test_internal_error_during_a_hit_stops_without_a_traceback(py: FakePython, monkeypatch: pytest.MonkeyPatch) -> None:
    obj = py.int(99, refcnt=2)
    session, handle, _ = watch(py, obj, "--stop-on", "never")

    def broken(*_args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(recorder_module, "classify", broken)
    assert py.t.hit(handle, 3, by_eval_loop(py)) is True
    assert session.recorder.last_stop_message == f"pylife: internal error while recording {obj:#x}: RuntimeError: boom"


def test_unreadable_python_frames_still_record_the_event(py: FakePython) -> None:
    tstate = python_thread(py)
    obj = py.int(99, refcnt=2)
    session, handle, _ = watch(py, obj)
    py.t.hit(handle, 3, by_eval_loop(py), tid=PYTHON_TID)
    assert session.recorder.history_of(obj).events[-1].op == "LOAD_FAST"
    # The thread's frame chain becomes unreadable.
    field = "PyThreadState.current_frame" if py.key >= (3, 13) else (
        "PyThreadState.cframe" if py.key >= (3, 11) else "PyThreadState.frame")
    py.t.write_u64(tstate + py.o(field), 0x10)
    assert py.t.hit(handle, 4, by_eval_loop(py), tid=PYTHON_TID) is False
    event = session.recorder.history_of(obj).events[-1]
    assert (event.kind, event.op, event.python) == (ev.INCREF, None, None)


# ---- unwatch, process exit, the log ----------------------------------------------------------


def test_unwatch_keeps_the_history_and_frees_the_slot(py: FakePython) -> None:
    obj = py.int(99, refcnt=2)
    session, handle, _ = watch(py, obj)
    py.t.hit(handle, 3, by_eval_loop(py))
    data = run_json(py, ["unwatch", hex(obj)], session)
    assert data == {"removed": [obj], "slots_used": 0, "slots_total": 4}
    assert handle not in py.t.watchpoints
    history = session.recorder.history_of(obj)
    assert history.closed == "unwatched by the user" and len(history.events) == 1
    assert set(run_json(py, ["unwatch", hex(obj)], session)) == {"error"}


def test_process_exit_closes_histories_and_returns_the_handles(py: FakePython) -> None:
    a, b = py.int(1000, refcnt=2), py.int(1001, refcnt=2)
    session, handle_a, _ = watch(py, a)
    _session, handle_b, _ = watch(py, b, session=session)
    handles = session.recorder.forget_process()
    assert sorted(handles) == sorted([handle_a, handle_b])
    assert session.recorder.watches == {}
    assert {h.closed for h in session.recorder.histories.values()} == {"the process exited"}


def test_the_log_holds_every_event_as_it_happens(py: FakePython) -> None:
    python_thread(py)
    obj, pool = float_in_pool(py, refcnt=2)
    session, handle, data = watch(py, obj)
    py.t.hit(handle, 3, by_eval_loop(py), tid=PYTHON_TID)
    py.t.hit(handle, 2, by_extension(py), tid=PYTHON_TID)
    py.t.hit(handle, 0, by_extension(py, "over_decref"), tid=PYTHON_TID)
    pool.free(obj)
    py.t.hit(handle, py.t.peek_u64(obj), [core(py, "pymalloc_free")], tid=PYTHON_TID)
    py.t.hit(handle, py.t.peek_u64(obj) + 1, by_extension(py, "use_stale"), tid=PYTHON_TID)
    lines = [json.loads(line) for line in Path(data["log"]).read_text().splitlines()]
    history = session.recorder.history_of(obj)
    assert [line["record"] for line in lines] == ["watch"] + ["event"] * 5
    assert [{k: v for k, v in line.items() if k != "record"} for line in lines[1:]] == [
        {**e.to_json(obj), "occupancy": 0} for e in history.events]
    (loaded,) = store.load(data["log"])
    assert loaded.to_json() == history.to_json()


def test_set_log_switches_files(py: FakePython, tmp_path: Path) -> None:
    obj = py.int(99, refcnt=2)
    target = tmp_path / "sub" / "mine.jsonl"
    _session, handle, data = watch(py, obj, "--log", str(target))
    assert data["log"] == str(target)
    py.t.hit(handle, 3, by_eval_loop(py))
    assert [json.loads(line)["record"] for line in target.read_text().splitlines()] == ["watch", "event"]


def test_unwritable_log_is_one_line_error_and_nothing_is_armed(py: FakePython, tmp_path: Path) -> None:
    obj = py.int(99, refcnt=2)
    (tmp_path / "plain").write_text("a file, not a directory")
    session = Session(py.target)
    data = run_json(py, ["watch", hex(obj), "--log", str(tmp_path / "plain" / "log.jsonl")], session)
    assert set(data) == {"error"} and "cannot write the history log" in data["error"]
    assert py.t.watchpoints == {} and session.recorder.watches == {} and session.recorder.histories == {}


def test_log_failing_during_a_hit_stops_and_keeps_the_phase(py: FakePython, tmp_path: Path) -> None:
    obj = py.int(99, refcnt=1)
    session, handle, _ = watch(py, obj, "--log", str(tmp_path / "log.jsonl"))

    def full(_line: str) -> None:
        raise OSError(28, "No space left on device")

    session.recorder.log._file.write = full  # type: ignore[union-attr, method-assign]
    assert py.t.hit(handle, 0, by_extension(py)) is True
    assert session.recorder.last_stop_message is not None and "No space left" in session.recorder.last_stop_message
    assert kinds(session, obj) == [ev.ZERO]
    assert watch_of(session, obj).phase == "freed" and session.recorder.history_of(obj).freed_at == 1


def test_watchpoint_the_debugger_refuses_leaves_no_history(py: FakePython, monkeypatch: pytest.MonkeyPatch) -> None:
    from pylife.errors import UserError

    def refuse(*_args: object) -> int:
        raise UserError("cannot set a hardware watchpoint on 0x1: no debug registers")

    monkeypatch.setattr(py.t, "watch_write", refuse)
    obj = py.int(99, refcnt=2)
    session = Session(py.target)
    assert "no debug registers" in run_json(py, ["watch", hex(obj)], session)["error"]
    assert session.recorder.watches == {} and session.recorder.histories == {}
    assert execute(session, ["history", "--json"]) == '{"objects": []}\n'  # one document, also when empty


def test_stop_on_free_for_a_gc_object_stops_at_zero(py: FakePython) -> None:
    # The allocator's free-list link goes to the GC head, before ob_refcnt: the
    # decrement to zero is the last step a watch on the count can see.
    obj, _pool = tuple_in_pool(py)
    session, handle, _ = watch(py, obj, "--stop-on", "free")
    assert py.t.hit(handle, 0, by_extension(py, "drop")) is True
    message = session.recorder.last_stop_message or ""
    assert "reached 0 in drop" in message and "outside the watched count" in message
