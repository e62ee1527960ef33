"""What the watched objects left behind: freed or alive, unreleased references, uses after free.

One summary for `pylife leaks` (at any stop), for the screen pylife prints on
its own when the process exits, and for the batch driver: plain data built
from the recorded histories only (no memory read), so it is the same live, at
exit (when the memory is gone) and from a log.

An object is alive when no decrement to zero was recorded for it and its
block was not handed to another object. Its references are split into those
a site took and never released (the balance's leak candidates, by site) and
those held since before the watch was armed: those have no site, but they
are still references, and the object is still reported alive with them.
"""

from __future__ import annotations

from typing import Any

from . import events as ev
from .balance import analyze
from .events import Event, History

USES_AFTER_FREE = (ev.USE_AFTER_FREE, ev.DECREF_AFTER_FREE)


def _site_text(event: Event | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {"seq": event.seq, "writer": event.writer, "python": event.python}


def summarize_history(history: History, refcnt: int | None, watched: bool) -> dict[str, Any]:
    """One object's lifetime summary; ``refcnt`` is its last recorded count (None: unknown)."""
    analysis = analyze(history)
    zero = next((e for e in history.events if e.seq == history.freed_at), None)
    reused = history.closed is not None and history.closed.startswith("memory reused")
    if history.freed_at is not None or reused:
        status = "freed"
    elif history.foreign:
        status = "foreign"
    elif history.closed == "unwatched by the user":
        status = "unwatched"
    else:
        status = "alive"
    candidates = analysis["leak_candidates"] if status in ("alive", "unwatched") else []
    held = None
    if status == "alive" and refcnt is not None:
        held = max(0, refcnt - sum(site["unreleased"] for site in candidates))
    return {
        "address": history.address,
        "occupancy": history.occupancy,
        "type": history.type,
        "status": status,
        "refcnt": refcnt if status in ("alive", "unwatched") else None,
        "watched": watched,
        "allocated_at": history.allocated_at,
        "freed_at": history.freed_at,
        "free_site": _site_text(zero),
        "closed": history.closed,
        "unreleased": candidates,
        "top_leak_candidate": candidates[0] if candidates else None,
        "held_before_watch": held,
        "uses_after_free": [{"seq": e.seq, "kind": e.kind, "writer": e.writer, "python": e.python,
                             "message": e.message} for e in history.events if e.kind in USES_AFTER_FREE],
    }


def last_refcount(history: History) -> int | None:
    """The count after the last recorded write (the initial count when nothing was written)."""
    for event in reversed(history.events):
        if event.kind not in USES_AFTER_FREE:
            return event.new
    return history.initial


def summarize(histories: list[tuple[History, int | None, bool]], at_exit: bool = False,
              exit_status: int | None = None) -> dict[str, Any]:
    """The `leaks` document from (history, last refcount, still watched) triples."""
    objects = [summarize_history(h, refcnt, watched) for h, refcnt, watched in histories]
    alive = [o for o in objects if o["status"] == "alive"]
    uses = [{"address": o["address"], "occupancy": o["occupancy"], "type": o["type"], **use}
            for o in objects for use in o["uses_after_free"]]
    notes = []
    if not objects:
        notes.append("nothing was watched in this process (pylife watch ADDR, watch --address ADDR)")
    for obj in alive:
        if obj["held_before_watch"]:
            notes.append(f"{obj['address']:#x} ({obj['type']}) is alive{' at exit' if at_exit else ''} with "
                         f"{obj['held_before_watch']} reference(s) held since before the watch was armed: "
                         "no site was recorded for them")
    return {"at_exit": at_exit, "exit_status": exit_status, "watched": len(objects),
            "alive": len(alive), "freed": sum(1 for o in objects if o["status"] == "freed"),
            "objects": objects, "uses_after_free": uses, "notes": notes}
