"""Error hierarchy. Every error carries one line meant for the user."""

from __future__ import annotations


class PylifeError(Exception):
    """Base of every error pylife reports as a one-line message."""


class UserError(PylifeError):
    """Bad input: a malformed address, an unknown option, an empty argument."""


class UnreadableMemory(PylifeError):
    """A read of target memory failed (unmapped, not in the core, ...)."""

    def __init__(self, address: int, size: int, why: str = "") -> None:
        self.address = address
        self.size = size
        detail = f": {why}" if why else ""
        super().__init__(f"cannot read {size} bytes at {address:#x}{detail}")


class NotLive(PylifeError):
    """The operation needs a running process, the target is a core file."""


class Unsupported(PylifeError):
    """The target is not something pylife understands (no CPython, unknown version)."""


class NotAnObject(PylifeError):
    """The address does not hold a plausible PyObject."""
