"""Name an object by a Python expression in a selected Python frame (``--py``, ``pylife frame``).

Threads are numbered by their OS thread id (LWP), as ``pylife bt`` prints
them ("Thread N"); frames as ``pylife bt --python`` numbers them (#0 is the
newest Python frame of the thread). ``pylife frame N`` keeps a selection in
the Session until the process next stops or resumes, like gdb's own frame
selection (which pylife leaves alone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .cpython.attributes import Reader
from .cpython.expression import evaluate, parse
from .cpython.frames import CodeCache, PyFrame, first_frame, walk
from .cpython.names import frame_names, lookup_name
from .cpython.threads import PyThread, match_os_threads, python_threads
from .errors import PylifeError, UserError
from .session import PythonFrameSelection, Session
from .target import ThreadInfo


@dataclass(frozen=True)
class SelectedFrame:
    tid: int
    index: int
    frame: PyFrame
    frame_count: int  # Python frames of the thread

    def describe(self) -> str:
        return f"{self.frame.function} (frame #{self.index} of thread {self.tid})"


def select_frame(session: Session, frame: int | None = None, thread: int | None = None) -> SelectedFrame:
    """The Python frame ``frame`` of OS thread ``thread``; defaults: the session's selection, else #0 of
    the debugger's selected thread."""
    if frame is not None and frame < 0:
        raise UserError(f"--frame must be >= 0, not {frame}")
    chosen = session.python_frame
    target = session.target
    mem = session.memory()
    runtime = session.runtime(mem)
    objects = session.objects(mem)
    py_threads = python_threads(mem, runtime)
    os_threads = list(target.threads())
    tid = thread
    if tid is None:
        tid = chosen.tid if chosen is not None else target.current_thread()
    if tid is None:
        tid = os_threads[0].tid if os_threads else None
    if tid is None:
        raise UserError("no thread to read Python frames from")
    py_thread = _python_thread(target.thread_pointer, py_threads, os_threads, tid)
    if frame is None:
        frame = chosen.index if chosen is not None and chosen.tid == tid else 0
    codes = CodeCache(objects)
    frames = list(walk(mem, objects, codes, first_frame(mem, objects, py_thread.tstate)))
    if not frames:
        raise UserError(f"thread {tid} has no Python frames")
    if frame >= len(frames):
        raise UserError(f"no Python frame #{frame}: thread {tid} has {len(frames)} (see 'pylife bt --python')")
    selected = frames[frame]
    if selected.error:
        raise UserError(f"Python frame #{frame} of thread {tid} is unreadable: {selected.error}")
    return SelectedFrame(tid, frame, selected, len(frames))


def _python_thread(thread_pointer: Callable[[int], int | None], py_threads: list[PyThread],
                   os_threads: list[ThreadInfo], tid: int) -> PyThread:
    known = [t for t in os_threads if t.tid == tid]
    if known:
        matched = match_os_threads(py_threads, known, thread_pointer)
        if tid in matched:
            return matched[tid]
        raise UserError(f"thread {tid} has no Python thread state (see 'pylife bt --all')")
    # A thread state whose OS thread is gone (bt --all lists it by native_thread_id).
    for py_thread in py_threads:
        if py_thread.native_thread_id == tid:
            return py_thread
    listed = ", ".join(str(t.tid) for t in os_threads[:16])
    raise UserError(f"no thread {tid} (threads: {listed}; numbered as in 'pylife bt --all')")


def evaluate_py(session: Session, expr: str, frame: int | None = None, thread: int | None = None) -> int:
    """Address of the object a Python expression names in a Python frame, read from memory only.

    UserError (one line) when the expression is not supported, a name is not
    in scope, a key or attribute is missing, or it needs a call (a property).
    """
    expression = parse(expr)
    selected = select_frame(session, frame, thread)
    mem = session.memory()
    reader = Reader(session.objects(mem))
    where = selected.describe()
    try:
        names = frame_names(reader, selected.frame)
    except UserError:
        raise
    except PylifeError as exc:
        raise UserError(f"cannot read the names of {where}: {exc}") from None

    def resolve(name: str) -> int:
        try:
            return lookup_name(reader, names, name, where)
        except UserError:
            raise
        except PylifeError as exc:
            raise UserError(f"{name}: cannot read it in {where} ({exc})") from None

    return evaluate(expression, reader, resolve)


def set_python_frame(session: Session, frame: int | None, thread: int | None) -> SelectedFrame:
    """`pylife frame`: select (and return) a Python frame for later commands."""
    selected = select_frame(session, frame, thread)
    session.python_frame = PythonFrameSelection(selected.tid, selected.index)
    return selected
