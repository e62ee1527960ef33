"""One Session per debugged target: the Target, its CPython runtime, settings."""

from __future__ import annotations

import dataclasses

from .cpython.objects import Objects
from .cpython.runtime import Runtime, detect, read_micro_version
from .errors import PylifeError
from .record.recorder import Recorder
from .record.typewatch import TypeWatcher
from .render.escape import escape
from .target import Memory, Target


@dataclasses.dataclass(frozen=True)
class PythonFrameSelection:
    """`pylife frame N`: frame N (numbered as `pylife bt --python`) of OS thread ``tid``."""

    tid: int
    index: int


class Session:
    def __init__(self, target: Target) -> None:
        self.target = target
        self._runtime: Runtime | None = None
        self._recorder: Recorder | None = None
        # Valid until the process next stops or resumes, like gdb's frame selection:
        # adapters call forget_python_frame() then.
        self.python_frame: PythonFrameSelection | None = None
        self.type_watcher = TypeWatcher()  # `pylife watch --type`: kept across runs, re-armed at each start

    def forget_python_frame(self) -> None:
        self.python_frame = None

    @property
    def recorder(self) -> Recorder:
        """Watches and histories: kept across stops and runs until cleared."""
        if self._recorder is None:
            self._recorder = Recorder()
        return self._recorder

    def apply_pending(self) -> None:
        """Delete watchpoints the recorder retired during a hit (safe point: stopped, outside callbacks)."""
        if self._recorder is not None:
            while self._recorder.pending_removals:
                handle = self._recorder.pending_removals.pop()
                try:
                    self.target.remove(handle)
                except PylifeError:
                    pass

    def stop_message(self) -> str | None:
        """The line an adapter prints when a watch hit stops at the prompt.

        Escaped here, once for both debuggers: it names target functions and types."""
        message = self._recorder.last_stop_message if self._recorder is not None else None
        return escape(message) if message else None

    def at_safe_point(self) -> None:
        """The adapter may create and delete breakpoints now (a command, a stop,
        new modules loaded; in lldb any callback): apply deferred deletions and
        arm the hooks of pending type watches."""
        self.apply_pending()
        if self.type_watcher.watches:
            self.type_watcher.arm(self)

    def reset(self) -> None:
        """Forget what was learnt about the target (new process, new objfiles, exit)."""
        self._runtime = None
        self.python_frame = None

    def memory(self) -> Memory:
        """A fresh memory view: caches are only valid while the target stays stopped."""
        return Memory(self.target)

    def runtime(self, mem: Memory | None = None) -> Runtime:
        if self._runtime is None:
            mem = mem or self.memory()
            runtime = detect(self.target, mem)
            if runtime.version.micro is None:
                micro = read_micro_version(mem, runtime)
                if micro is not None:
                    runtime.layout.version = dataclasses.replace(runtime.version, micro=micro)
            self._runtime = runtime
        return self._runtime

    def objects(self, mem: Memory) -> Objects:
        return Objects(mem, self.runtime(mem).layout)
