"""thread_stack.StackReader: the one assembly of a thread's merged C + Python stack (bt, diagnose, recorder)."""

from __future__ import annotations

import json

from pylife.cpython.thread_stack import StackReader, ThreadStack
from pylife.session import Session

from .builders import FakePython
from .test_recorder import EVAL, PYTHON_TID, by_eval_loop, python_thread


def _read(py: FakePython, reader: StackReader, tid: int | None, **kwargs: int) -> ThreadStack:
    session = Session(py.target)
    mem = session.memory()
    return reader.read(mem, session.objects(mem), session.runtime(mem), tid, **kwargs)  # type: ignore[arg-type]


def test_python_frames_replace_the_eval_loop_and_the_reader_matches_the_thread(py: FakePython) -> None:
    python_thread(py)
    py.t.frames[PYTHON_TID] = by_eval_loop(py)
    stack = _read(py, StackReader(py.target), PYTHON_TID)
    frames = [(f.kind, f.function, f.line) for f in stack.merged()]
    assert frames[:2] == [("native", "Py_INCREF", 100), ("python", "f", 12)]
    assert [f for f in frames if f[0] == "python"] == [("python", "f", 12), ("python", "<module>", 3)]
    assert EVAL not in [f for _kind, f, _line in frames]
    assert stack.notes == [] and stack.top_python().function == "f"
    assert [f.function for f in stack.merged("native", limit=2)] == ["Py_INCREF", EVAL]


def test_what_cannot_be_read_is_a_note(py: FakePython) -> None:
    stack = _read(py, StackReader(py.target), None, tstate=0x10, native_limit=0)  # a thread state in unmapped memory
    assert stack.python == [] and stack.native == []
    assert len(stack.notes) == 1 and stack.notes[0].startswith("Python frames unreadable: ")


def test_persistent_and_fresh_readers_give_the_same_json(py: FakePython) -> None:
    """The recorder's cached path (persistent) and bt's (fresh) agree frame for frame."""
    python_thread(py)
    py.t.frames[PYTHON_TID] = by_eval_loop(py)
    fresh = StackReader(py.target)
    persistent = StackReader(py.target, persistent=True)
    expected = fresh.merged_json(_read(py, fresh, PYTHON_TID))
    for _ in range(2):  # the second time from the caches
        got = persistent.merged_json(_read(py, persistent, PYTHON_TID, native_limit=16))
        assert got == expected and json.loads(got[1]) == got[0]
