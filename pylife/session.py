"""One Session per debugged target: the Target, its CPython runtime, settings."""

from __future__ import annotations

import dataclasses

from .cpython.objects import Objects
from .cpython.runtime import Runtime, detect, read_micro_version
from .target import Memory, Target


class Session:
    def __init__(self, target: Target) -> None:
        self.target = target
        self._runtime: Runtime | None = None

    def reset(self) -> None:
        """Forget what was learnt about the target (new process, new objfiles, exit)."""
        self._runtime = None

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
