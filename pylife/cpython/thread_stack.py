"""One thread's merged C + Python stack, assembled once for bt, diagnose and the watch recorder.

The C frames come from the Target's unwinder; the Python frames from memory
(frames.walk from the thread state's current frame), the thread state found
by OS thread id (threads.match_os_threads); stack.merge puts them together.

Made for one command (bt, diagnose), a StackReader reads everything afresh.
Kept across watch hits (the recorder: ``persistent=True``), it also keeps
what a loop repeats at almost every hit: code objects, OS thread -> thread
state, the C frames older than an eval-loop activation, and each whole
stack's JSON; ``forget()`` drops them when the process exits or restarts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import PylifeError
from ..target import Memory, NativeFrame, Target, ThreadInfo
from .frames import CodeCache, PyFrame, first_frame, walk
from .objects import Objects
from .runtime import Runtime
from .stack import EVAL_FUNCTIONS, StackFrame, merge
from .threads import PyThread, match_os_threads, python_threads

MAX_NATIVE_FRAMES = 20_000  # an unwinder looping on a corrupt stack stops here
MAX_CACHED_FRAMES = 50_000  # JSON of single frames kept by a persistent reader
MAX_CACHED_STACKS = 4096  # whole stacks (JSON) kept by a persistent reader
MAX_CACHED_TAILS = 256  # eval-loop activations whose older C frames are kept

FrameJson = dict[str, object]


@dataclass
class ThreadStack:
    """A thread's stack as read: its C frames (innermost first), its Python frames, why either is missing."""

    native: list[NativeFrame]
    python: list[PyFrame]
    notes: list[str] = field(default_factory=list)

    def merged(self, mode: str = "merged", limit: int | None = None) -> list[StackFrame]:
        """stack.merge's frames (mode "merged", "python" or "native"), at most ``limit``."""
        frames = merge(self.native, self.python, mode)
        return frames[:limit] if limit is not None else frames

    def top_python(self) -> PyFrame | None:
        """The innermost Python frame whose code object was read."""
        return next((f for f in self.python if f.code is not None), None)


class StackReader:
    """Reads threads' merged stacks from one target (see the module docstring)."""

    def __init__(self, target: Target, persistent: bool = False) -> None:
        self.target = target
        self.persistent = persistent
        self._codes: CodeCache | None = None
        self._tstates: dict[int, int] | None = None  # OS tid -> tstate
        self._tails: dict[tuple[int, int, int], list[NativeFrame]] = {}  # eval activation -> older C frames
        self._frame_json: dict[tuple[object, ...], tuple[FrameJson, str]] = {}
        self._stacks: dict[tuple[object, ...], tuple[list[FrameJson], str]] = {}

    def forget(self) -> None:
        """The process exited or restarted: nothing read from it stays valid."""
        self._codes = None
        self._tstates = None
        self._tails.clear()
        self._stacks.clear()

    def read(self, mem: Memory, objects: Objects, runtime: Runtime, tid: int | None, *,
             tstate: int | None = None, native: Sequence[NativeFrame] | None = None,
             native_limit: int = MAX_NATIVE_FRAMES) -> ThreadStack:
        """The stack of OS thread ``tid`` (None: a thread state without an OS thread).

        ``tstate``: its thread state if the caller matched it, else it is
        matched here by ``tid``. ``native``: its C frames if the caller has
        them, else up to ``native_limit`` are unwound (0: none). What cannot
        be read becomes a note, never an exception."""
        notes: list[str] = []
        python: list[PyFrame] = []
        try:
            if tstate is None and tid is not None:
                tstate = self.tstate_of(mem, runtime, tid)
            if tstate is not None:
                python = self.python_frames(mem, objects, tstate)
        except PylifeError as exc:
            notes.append(f"Python frames unreadable: {exc}")
        frames: list[NativeFrame] = list(native) if native is not None else []
        if native is None and tid is not None and native_limit > 0:
            try:
                frames = self.native_frames(tid, native_limit)
            except PylifeError as exc:
                notes.append(f"native frames unavailable: {exc}")
        return ThreadStack(frames, python, notes)

    def match(self, mem: Memory, runtime: Runtime, py_threads: Sequence[PyThread] | None = None,
              os_threads: Sequence[ThreadInfo] | None = None) -> dict[int, PyThread]:
        """OS tid -> its Python thread (threads.match_os_threads), remembered for ``read``."""
        matched = match_os_threads(python_threads(mem, runtime) if py_threads is None else py_threads,
                                   self.target.threads() if os_threads is None else os_threads,
                                   self.target.thread_pointer)
        self._tstates = {t: p.tstate for t, p in matched.items()}
        return matched

    def tstate_of(self, mem: Memory, runtime: Runtime, tid: int) -> int | None:
        """The thread state of OS thread ``tid``; a persistent reader matches again for a thread it has not seen."""
        if self._tstates is None or (self.persistent and tid not in self._tstates):
            self.match(mem, runtime)
        return (self._tstates or {}).get(tid)

    def python_frames(self, mem: Memory, objects: Objects, tstate: int) -> list[PyFrame]:
        if self._codes is None or self._codes.objects.layout is not objects.layout:
            self._codes = CodeCache(objects)
        self._codes.objects = objects  # a fresh memory view, the same cached code objects
        return list(walk(mem, objects, self._codes, first_frame(mem, objects, tstate)))

    def native_frames(self, tid: int, limit: int) -> list[NativeFrame]:
        """The thread's C frames, at most ``limit``.

        A persistent reader unwinds up to the innermost eval loop, then reuses
        the older frames from the last time that activation (pc and stack
        pointer) was seen: they do not change while it runs, and a watch hit
        only pays for the few inner frames."""
        if not self.persistent:
            return list(self.target.native_frames(tid, limit))
        inner = list(self.target.native_frames(tid, limit, EVAL_FUNCTIONS))
        if not inner or inner[-1].function not in EVAL_FUNCTIONS or inner[-1].sp is None or len(inner) >= limit:
            return inner
        key = (tid, inner[-1].pc, inner[-1].sp)
        tail = self._tails.get(key)
        if tail is None:
            tail = list(self.target.native_frames(tid, limit))[len(inner):]
            if len(self._tails) > MAX_CACHED_TAILS:
                self._tails.clear()
            self._tails[key] = tail
        return (inner + tail)[:limit]

    def merged_json(self, stack: ThreadStack) -> tuple[list[FrameJson], str]:
        """The merged stack as JSON dicts and as JSON text. A persistent reader
        converts each frame once and merges each whole stack once: a loop
        repeats the same few stacks (same C frames, same Python lines)."""
        if not self.persistent:
            frames = [frame.to_json() for frame in stack.merged()]
            return frames, json.dumps(frames, separators=(",", ":"))
        key = (tuple(stack.native), tuple((f.code.address if f.code else f.address, f.line, f.activation, f.error)
                                          for f in stack.python))
        cached = self._stacks.get(key)
        if cached is not None:
            return cached
        if len(self._frame_json) > MAX_CACHED_FRAMES:
            self._frame_json.clear()
        result = []
        texts = []
        for frame in stack.merged():
            frame_key = (frame.kind, frame.address, frame.function, frame.line, frame.file)
            entry = self._frame_json.get(frame_key)
            if entry is None:
                data = frame.to_json()
                entry = self._frame_json[frame_key] = (data, json.dumps(data, separators=(",", ":")))
            result.append(entry[0])
            texts.append(entry[1])
        if len(self._stacks) > MAX_CACHED_STACKS:
            self._stacks.clear()
        cached = self._stacks[key] = (result, "[" + ",".join(texts) + "]")
        return cached
