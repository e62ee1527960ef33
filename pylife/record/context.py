"""What the recorder and the type watcher need of the session that owns them.

The session (pylife/session.py) owns a Recorder and a TypeWatcher, so they
cannot import it back: they name what they use here, and Session provides it
structurally (mypy checks it at every call that passes a Session).
"""

from __future__ import annotations

from typing import Protocol

from ..cpython.objects import Objects
from ..cpython.runtime import Runtime
from ..target import Memory, Target


class TargetContext(Protocol):
    """The debugged target and its CPython runtime, as the session caches them."""

    @property
    def target(self) -> Target: ...

    def memory(self) -> Memory: ...

    def runtime(self, mem: Memory | None = None) -> Runtime: ...

    def objects(self, mem: Memory) -> Objects: ...

