"""Plain data for recorded refcount changes: captured at hit time, never debugger handles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..cpython.culprit import culprit as culprit_of

# Event kinds.
INCREF = "incref"
DECREF = "decref"
ZERO = "zero"  # the decrement that took the count to 0: the object is being freed
ALLOCATOR = "allocator"  # the allocator wrote into the freed block (free-list link, debug fill)
REUSE = "reuse"  # the block now holds a new object: the history is closed (followed: the new one's allocation)
USE_AFTER_FREE = "use-after-free"
DECREF_AFTER_FREE = "decref-after-free"
NEGATIVE = "negative"
WRITE = "write"  # a write that is none of the above (e.g. Py_SET_REFCNT)
ANOMALIES = frozenset({USE_AFTER_FREE, DECREF_AFTER_FREE, NEGATIVE})


@dataclass
class Event:
    seq: int
    tid: int | None
    old: int
    new: int
    kind: str
    writer: str | None  # innermost C function that wrote the count (inline refcount helpers skipped)
    op: str | None  # bytecode instruction when the eval loop wrote it
    python: str | None  # innermost Python frame, "function (file:line)"
    stack: list[dict[str, Any]] = field(default_factory=list)  # merged frames as in `pylife bt --json`
    message: str | None = None
    # At a release by the interpreter: the call whose result it was, read from the bytecode
    # (cpython/handoff.py), and whether the watch was set before that call began.
    release: dict[str, Any] | None = None

    @property
    def delta(self) -> int:
        return self.new - self.old

    @property
    def culprit(self) -> dict[str, Any] | None:
        """The innermost frame of the user's own code on the event's stack (cpython/culprit.py)."""
        return culprit_of(self.stack)

    def to_json(self, address: int | None = None) -> dict[str, Any]:
        # Hand-written (not dataclasses.asdict): this runs once per watch hit
        # and asdict deep-copies the whole stack.
        data: dict[str, Any] = {} if address is None else {"address": address}
        data.update(seq=self.seq, tid=self.tid, old=self.old, new=self.new, kind=self.kind, writer=self.writer,
                    op=self.op, python=self.python, stack=self.stack, message=self.message)
        if self.release is not None:  # rare: only the releases the bytecode explains
            data["release"] = self.release
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        get: Callable[[str], Any] = data.get  # a missing field reads as None, as before
        return cls(get("seq"), get("tid"), get("old"), get("new"), get("kind"), get("writer"), get("op"),
                   get("python"), list(get("stack") or []), get("message"),
                   get("release") if isinstance(get("release"), dict) else None)


# The type recorded for such an occupant (recorder.py), e.g. "(no object header here: inside a tuple object)".
FOREIGN_TYPE_PREFIX = "(no object header here"


@dataclass
class History:
    """One object's recorded life at one address.

    Histories are keyed by (address, occupancy): a followed address
    (``watch --address``) holds one object after another, each with its own
    history; ``occupancy`` counts the histories recorded at that address in
    this session (0 for the first)."""

    address: int
    type: str
    events: list[Event] = field(default_factory=list)
    freed_at: int | None = None  # seq of the ZERO event
    closed: str | None = None  # why recording ended, e.g. "memory reused by a new int object at event 9"
    initial: int | None = None  # refcount when the watch was set (0 for an occupant followed from its allocation)
    occupancy: int = 0
    allocated_at: int | None = None  # seq of the allocation event, when it was recorded (a followed occupant)
    origin: str | None = None  # "watch --type NAME" when a type watch started it at the allocation
    allocation: dict[str, Any] | None = None  # where it was allocated: tid, function, python, stack

    @property
    def foreign(self) -> bool:
        """A followed block's occupant whose header is not at the address: the word is its data, not a count."""
        return self.type.startswith(FOREIGN_TYPE_PREFIX)

    @property
    def key(self) -> tuple[int, int]:
        return self.address, self.occupancy

    def to_json(self) -> dict[str, Any]:
        data = {"address": self.address, "occupancy": self.occupancy, "type": self.type, "initial": self.initial,
                "allocated_at": self.allocated_at, "events": [e.to_json() for e in self.events],
                "freed_at": self.freed_at, "closed": self.closed}
        if self.origin is not None:
            data.update(origin=self.origin, allocation=self.allocation)
        return data
