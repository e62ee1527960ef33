"""Following an address across frees and reuses (`pylife watch --address ADDR`).

One watchpoint, many occupants: when a new object moves into the freed
block, its history starts (keyed by (address, occupancy)) and the watch stays
on. The hard part is telling the new occupant's own refcounting from a write
through a stale pointer to the old one: both are the same +1 or -1 on the
same word. What is known at the write:

- the allocation path (allocator functions, object initialisers): never a use;
- the writer's stack, hence its *site* (balance.site_of: the first frame
  outside the interpreter core: a C extension function, or a Python line);
- which sites wrote the freed occupant's count while it lived, or after it died.

The rule: after a reuse, a write whose site is a C function outside the core
that wrote a freed occupant's count (while it lived or after its free) is a
use after free through a stale pointer: that code knew the old object, and
nothing it held can be the new one's reference. Every other write is the new
occupant's own refcounting.

Its limits, stated in the README too:
- a C function that legitimately handles both objects (a generic helper
  called on the old object, then on the new one) is reported as a stale use:
  a false alarm, which the stop message lets the user judge. "Outside the
  core" is by image (stack.is_core_image): the standard library's C modules
  built as shared objects (lib-dynload: _json, _pickle, _heapq...) count;
- a stale pointer used by code that never wrote the old object's count while
  it was watched, or through the interpreter core (a list holding the
  dangling pointer, read by Python code), is charged to the new occupant:
  missed, though the new occupant's balance then shows a site that holds or
  releases references it never took;
- Python lines are never sites of stale uses: a loop handles every object at
  the same line, so they would all look stale.

Which write is a reuse (the block handed to a new object) is the recorder's
call (_classify), not this rule's; under PYTHONMALLOC=debug it reads the
hooks' header in front of the block, since pymalloc's pool does not know a
block that starts 16 bytes before the object.
"""

from __future__ import annotations

from typing import Any

from . import events as ev
from .balance import site_of
from .events import History

# Kinds whose writer held a reference to (or a pointer into) the occupant.
_USES = frozenset({ev.INCREF, ev.DECREF, ev.ZERO, ev.NEGATIVE, ev.USE_AFTER_FREE, ev.DECREF_AFTER_FREE})


def extension_site(stack: list[dict[str, Any]]) -> str | None:
    """The write's site when it is a C function outside the interpreter core, else None."""
    function, _file, _line, chain, in_core = site_of(stack)
    if in_core or not chain:
        return None
    frames = [f for f in stack if f.get("function") in chain]
    site_frame = next((f for f in reversed(frames) if f.get("function") == function), None)
    if site_frame is None or site_frame.get("kind") != "native":
        return None
    return function


def sites_that_knew(history: History) -> set[str]:
    """C extension sites that wrote this occupant's count."""
    sites = set()
    for event in history.events:
        if event.kind in _USES:
            site = extension_site(event.stack)
            if site is not None:
                sites.add(site)
    return sites


def stale_message(site: str, address: int, old: int, new: int, victim: History, current: History) -> str:
    allocated = f", allocated at event {current.allocated_at}" if current.allocated_at is not None else ""
    return (f"use after free through a stale pointer: {site} wrote the refcount at {address:#x} ({old} -> {new}), "
            f"but the object it knew is dead: {victim.type} (occupant {victim.occupancy}, freed at event "
            f"{victim.freed_at}); the block now holds a {current.type} (occupant {current.occupancy}{allocated})")
