"""One watched object: its history, the hardware watchpoints on its count, and its phase.

The recorder (record/recorder.py) creates and updates a Watch at each hit; the
event classification (record/classify.py) reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .events import History

HARDWARE_SLOTS = 4  # x86-64 debug registers DR0-DR3
# All 8 bytes of ob_refcnt: 3.12+ Py_INCREF writes the low 32 bits (ob_refcnt_split[0])
# but Py_DECREF the whole Py_ssize_t, and the allocator's free-list link is 8 bytes.
WATCH_SIZE = 8
STOP_CHOICES = ("change", "zero", "free", "anomaly", "never")


@dataclass
class WatchOptions:
    stop_on: str = "anomaly"
    max_events: int = 0  # 0: unbounded
    depth: int = 16  # C frames captured per event
    follow: bool = False  # keep watching the address across frees and reuses (record/follow.py)


@dataclass
class Watch:
    history: History
    field_address: int
    field_size: int
    options: WatchOptions
    handle: int | None = None
    last: int = 0
    phase: str = "alive"  # alive -> freed -> closed; followed: freed -> alive (a new occupant) or foreign
    block: int = 0  # start of the object's allocation (object - pre-header)
    block_size: int = 0  # bytes of that allocation
    stop_reason: str | None = field(default=None)
    # Followed address: C sites that wrote a freed occupant's count -> that occupant (follow.py).
    stale_sites: dict[str, History] = field(default_factory=dict)
    # Free-threaded builds: ob_ref_shared's watchpoint besides ob_ref_local's (one slot each).
    more_handles: list[int] = field(default_factory=list)
    slots: int = 1
    # Where every Python frame of every thread stood when the watch was set: (code, code unit);
    # None when a thread's frames could not be read. A call no frame was inside then began after.
    positions: frozenset[tuple[int, int]] | None = None

    def handles(self) -> list[int]:
        return ([self.handle] if self.handle is not None else []) + self.more_handles
