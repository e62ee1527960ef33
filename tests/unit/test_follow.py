"""Following an address across frees and reuses (`pylife watch --address`), on a fake process.

The scenario of buggy.c's cache/touch_cached: an extension function writes a
float's count through a pointer it keeps; the float dies; a new float takes
the same pymalloc block; the same function writes again through its stale
pointer. The rule (pylife/record/follow.py): after a reuse, a write whose
site is a C function outside the core that wrote a freed occupant's count is
a use after free; every other write is the new occupant's own refcounting.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pylife.commands import execute
from pylife.cpython import debug_hooks
from pylife.record import events as ev
from pylife.record import store
from pylife.record.balance import analyze
from pylife.session import Session

from .builders import FakePython, Pool
from .support import run_json
from .test_recorder import by_eval_loop, by_extension, core, eval_frame, float_in_pool


@pytest.fixture(autouse=True)
def _log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYLIFE_LOG_DIR", str(tmp_path))


def follow(py: FakePython, address: int, *options: str) -> tuple[Session, int, dict[str, Any]]:
    session = Session(py.target)
    data = run_json(py, ["watch", "--address", hex(address), *options], session)
    assert "error" not in data, data
    (handle,) = py.t.watchpoints
    return session, handle, data


def free_and_reuse(py: FakePython, obj: int, pool: Pool, handle: int) -> bool:
    """The float dies (eval loop), pymalloc takes the block back, a new float moves in."""
    py.t.hit(handle, 0, by_eval_loop(py))
    pool.free(obj)
    py.t.hit(handle, py.t.peek_u64(obj), [core(py, "pymalloc_free"), core(py, "_PyObject_Free")])
    assert pool.reuse() == obj
    py.t.write_u64(obj + py.o("PyObject.ob_type"), py.types["float"])
    return py.t.hit(handle, 1, [core(py, "_Py_NewReference"), core(py, "PyFloat_FromDouble"), eval_frame(py)])


def test_watch_address_and_follow_flag_are_the_same(py: FakePython) -> None:
    obj, _pool = float_in_pool(py)
    _session, _handle, data = follow(py, obj)
    assert data["follow"] is True and data["occupancy"] == 0
    session = Session(py.target)
    other = py.float(2.0, refcnt=2)
    assert run_json(py, ["watch", hex(other), "--follow"], session)["follow"] is True
    assert run_json(py, ["watch", hex(py.float(3.0))], session)["follow"] is False
    assert "give the address once" in run_json(py, ["watch", hex(obj), "--address", hex(obj)])["error"]
    assert "required" in run_json(py, ["watch"])["error"]
    text = execute(Session(py.target), ["watch", "--address", hex(py.float(4.0))])
    assert "following the address across frees and reuses" in text


def test_reuse_opens_the_new_occupants_history_and_the_watch_stays(py: FakePython) -> None:
    obj, pool = float_in_pool(py, refcnt=1)
    session, handle, _ = follow(py, obj)
    assert free_and_reuse(py, obj, pool, handle) is False  # a reuse is no anomaly
    recorder = session.recorder
    victim, occupant = recorder.histories[obj, 0], recorder.histories[obj, 1]
    assert [e.kind for e in victim.events] == [ev.ZERO, ev.ALLOCATOR]
    assert victim.freed_at == 1 and victim.closed is not None and victim.closed.startswith("memory reused by a new float")
    assert (occupant.type, occupant.initial, occupant.allocated_at, occupant.closed) == ("float", 0, 3, None)
    assert [e.kind for e in occupant.events] == [ev.REUSE]
    assert obj in recorder.watches and recorder.watches[obj].phase == "alive" and recorder.pending_removals == []
    assert recorder.history_of(obj) is occupant
    # The new occupant's own refcounting: recorded in its history, no stop.
    assert py.t.hit(handle, 2, by_eval_loop(py)) is False
    assert py.t.hit(handle, 1, by_extension(py, "unrelated_c_function")) is False
    assert [e.kind for e in occupant.events] == [ev.REUSE, ev.INCREF, ev.DECREF]
    # Its balance counts the allocation as the allocating site's reference.
    (site,) = [s for s in analyze(occupant)["leak_candidates"] if 3 in s["events"]]
    assert site["increments"] == 1 and site["decrements"] == 0
    rows = run_json(py, ["watches"], session)["watches"]
    assert [(r["follow"], r["occupancy"], r["phase"]) for r in rows] == [(True, 1, "alive")]


def test_write_through_a_stale_pointer_after_the_reuse_is_a_use_after_free(py: FakePython) -> None:
    obj, pool = float_in_pool(py, refcnt=1)
    session, handle, _ = follow(py, obj)
    # touch_cached uses its cached pointer while the float lives: +1, -1.
    py.t.hit(handle, 2, by_extension(py, "touch_cached"))
    py.t.hit(handle, 1, by_extension(py, "touch_cached"))
    free_and_reuse(py, obj, pool, handle)
    py.t.hit(handle, 2, by_eval_loop(py))  # the new float's own reference
    # The same function writes again: through its stale pointer, onto the new float.
    assert py.t.hit(handle, 3, by_extension(py, "touch_cached")) is True
    recorder = session.recorder
    victim, occupant = recorder.histories[obj, 0], recorder.histories[obj, 1]
    stale = victim.events[-1]
    assert (stale.kind, stale.writer, stale.old, stale.new) == (ev.USE_AFTER_FREE, "touch_cached", 2, 3)
    assert stale.message is not None and "stale pointer" in stale.message and "touch_cached" in stale.message
    assert "float (occupant 0, freed at event 3)" in stale.message
    assert "now holds a float (occupant 1, allocated at event 5)" in stale.message
    assert recorder.last_stop_message == f"pylife: {stale.message}"
    assert [e.kind for e in occupant.events] == [ev.REUSE, ev.INCREF]  # not charged to the new float
    assert recorder.watches[obj].last == 3
    # The balance of the victim names the use after free.
    assert any("touched it afterwards" in note for note in analyze(victim)["notes"])
    # The log keeps each event with its occupant.
    (first, second) = store.load(recorder.log.path)
    assert (first.occupancy, second.occupancy) == (0, 1)
    assert first.events[-1].kind == ev.USE_AFTER_FREE and [e.kind for e in second.events] == [ev.REUSE, ev.INCREF]
    assert second.allocated_at == 5 and first.closed == victim.closed


def test_a_write_after_the_free_before_any_reuse_marks_its_site_stale(py: FakePython) -> None:
    obj, pool = float_in_pool(py, refcnt=1)
    session, handle, _ = follow(py, obj)
    py.t.hit(handle, 0, by_eval_loop(py))
    pool.free(obj)
    link = py.t.peek_u64(obj)
    py.t.hit(handle, link, [core(py, "pymalloc_free")])
    assert py.t.hit(handle, link + 1, by_extension(py, "late_user")) is True  # classic use after free
    assert pool.reuse() == obj
    py.t.write_u64(obj + py.o("PyObject.ob_type"), py.types["float"])
    py.t.hit(handle, 1, [core(py, "_Py_NewReference"), core(py, "PyFloat_FromDouble")])
    assert py.t.hit(handle, 2, by_extension(py, "late_user")) is True
    assert session.recorder.histories[obj, 0].events[-1].kind == ev.USE_AFTER_FREE


def test_python_lines_are_never_stale_sites(py: FakePython) -> None:
    """A loop handles every object at the same line: the interpreter's writes are the occupant's own."""
    obj, pool = float_in_pool(py, refcnt=1)
    session, handle, _ = follow(py, obj)
    py.t.hit(handle, 2, by_eval_loop(py))
    py.t.hit(handle, 1, by_eval_loop(py))
    free_and_reuse(py, obj, pool, handle)
    assert py.t.hit(handle, 2, by_eval_loop(py)) is False
    assert session.recorder.histories[obj, 1].events[-1].kind == ev.INCREF


def test_without_follow_a_reuse_still_closes_the_watch(py: FakePython) -> None:
    obj, pool = float_in_pool(py, refcnt=1)
    session = Session(py.target)
    run_json(py, ["watch", hex(obj)], session)
    (handle,) = py.t.watchpoints
    free_and_reuse(py, obj, pool, handle)
    assert obj not in session.recorder.watches and session.recorder.pending_removals == [handle]
    assert list(session.recorder.histories) == [(obj, 0)]


def test_new_object_whose_header_is_elsewhere_is_a_foreign_occupant(py: FakePython) -> None:
    obj, pool = float_in_pool(py, refcnt=1)
    session, handle, _ = follow(py, obj)
    py.t.hit(handle, 0, by_eval_loop(py))
    pool.free(obj)
    py.t.hit(handle, py.t.peek_u64(obj), [core(py, "pymalloc_free")])
    assert pool.reuse() == obj
    py.t.write_u64(obj + py.o("PyObject.ob_type"), 0x10)  # not a type: the word is someone's data
    py.t.hit(handle, 1, [core(py, "_Py_NewReference"), core(py, "PyTuple_New")])
    occupant = session.recorder.histories[obj, 1]
    assert occupant.type.startswith("(no object header here")
    assert session.recorder.watches[obj].phase == "foreign"
    assert py.t.hit(handle, 0x1234, by_extension(py, "fill")) is False
    assert occupant.events[-1].kind == ev.WRITE


def test_history_shows_each_occupant(py: FakePython) -> None:
    obj, pool = float_in_pool(py, refcnt=1)
    session, handle, _ = follow(py, obj)
    free_and_reuse(py, obj, pool, handle)
    document = json.loads(execute(session, ["history", hex(obj), "--json"]))
    assert [(h["occupancy"], h["allocated_at"]) for h in document["objects"]] == [(0, None), (1, 3)]
    text = execute(session, ["history"])
    assert f"{obj:#x} float: 2 events (initial refcount 1); freed at event 1; memory reused" in text
    assert f"{obj:#x} occupant 1 float: 1 events (allocated at event 3)" in text


def test_the_rules_limits_a_generic_helper_is_a_false_alarm_a_new_writer_is_missed(py: FakePython) -> None:
    """Documented limits (follow.py, README): site identity is the only evidence."""
    obj, pool = float_in_pool(py, refcnt=1)
    session, handle, _ = follow(py, obj)
    py.t.hit(handle, 2, by_extension(py, "generic_helper"))  # legitimately on the old float
    py.t.hit(handle, 1, by_extension(py, "generic_helper"))
    free_and_reuse(py, obj, pool, handle)
    # The same helper called legitimately on the new float: reported (false alarm).
    assert py.t.hit(handle, 2, by_extension(py, "generic_helper")) is True
    assert session.recorder.histories[obj, 0].events[-1].kind == ev.USE_AFTER_FREE
    # A stale pointer used by a function never seen with the old float: charged to the new one (missed).
    assert py.t.hit(handle, 3, by_extension(py, "never_seen_before")) is False
    assert session.recorder.histories[obj, 1].events[-1].kind == ev.INCREF


@pytest.mark.parametrize("hooks_reallocated", [True, False])
def test_debug_hooks_reallocation_is_a_reuse_not_a_use_after_free(py: FakePython, hooks_reallocated: bool) -> None:
    """PYTHONMALLOC=debug: the allocation starts 16 bytes before the object, so pymalloc's
    pool does not know the watched block; the hooks' header does. Seen for real: a
    tuple iterator's it_index (= 0, then 1) fell on a freed object's count."""
    pad = py.heap.alloc(debug_hooks.DEBUG_HEADER)
    obj = py.float(2.5)
    assert obj == pad + debug_hooks.DEBUG_HEADER

    def header(valid: bool) -> None:
        py.t.write(pad, (24).to_bytes(8, "big") + b"o" + bytes([debug_hooks.FORBIDDENBYTE] * 7) if valid
                   else bytes([debug_hooks.DEADBYTE] * debug_hooks.DEBUG_HEADER))

    header(True)
    session, handle, _ = follow(py, obj)
    py.t.hit(handle, 0, by_eval_loop(py))
    header(False)
    dead, clean = (int.from_bytes(bytes([fill] * 8), "little", signed=True) for fill in (debug_hooks.DEADBYTE, debug_hooks.CLEANBYTE))
    py.t.hit(handle, dead, [core(py, "memset"), core(py, "_PyMem_DebugRawFree")])
    header(hooks_reallocated)
    py.t.hit(handle, clean, [core(py, "memset"), core(py, "_PyMem_DebugRawAlloc")])
    py.t.write_u64(obj + py.o("PyObject.ob_type"), 0x10)  # the iterator's header is 16 bytes lower: not a type here
    stopped = py.t.hit(handle, 0, [core(py, "tuple_iter"), core(py, "PyObject_GetIter"), eval_frame(py)])
    victim = session.recorder.histories[obj, 0]
    if not hooks_reallocated:  # the hooks' header still dead: the block is free, the write a use after free
        assert stopped is True and victim.events[-1].kind == ev.USE_AFTER_FREE
        return
    assert stopped is False, [(e.kind, e.message) for e in victim.events]
    assert [e.kind for e in victim.events] == [ev.ZERO, ev.ALLOCATOR, ev.ALLOCATOR]
    occupant = session.recorder.histories[obj, 1]
    assert occupant.type.startswith("(no object header here") and session.recorder.watches[obj].phase == "foreign"
    assert py.t.hit(handle, 1, [core(py, "tupleiter_next"), eval_frame(py)]) is False
    assert [e.kind for e in occupant.events] == [ev.REUSE, ev.WRITE]
