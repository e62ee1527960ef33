"""Balance analysis: pair increments with decrements by site, name leaks and over-decrefs.

A *site* is the C function that wrote the count plus its callers up to the
first frame outside the interpreter core (libpython or a static python
executable): an incref done by PyIter_Next on behalf of an extension
function is charged to that extension function; one done by the eval loop
is charged to the Python line it was executing.

Ownership handed from Python to C: a reference a Python function returns
(or yields) to a C caller -- the return of an eval-loop activation entered
from C, PyIter_Next on a generator, a callback's result -- belongs to that C
caller. What such a Python site never released is charged to the first
user C frame outside it (cpython/culprit.py), not to the Python line.

A borrowed reference returned as new: when the interpreter's release that
freed the object was of a call's result (the bytecode says so, at the
release: cpython/handoff.py), the callee is a builtin whose C function is
named, the watch was set before that call began, and no increment was
recorded under that call, the count was never raised for the reference the
call returned: that C function is the over-decref candidate.

What it can know: only the changes recorded while watching. References
taken before the watch started (the initial count) have no site, so a site
with more decrements than increments may be releasing one of those
legitimately; the analysis ranks, it does not convict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..cpython.culprit import culprit as culprit_of
from ..cpython.culprit import is_user_frame
from ..cpython.stack import is_core_image
from . import events as ev
from .events import History
from .writers import REFCOUNT_HELPERS


def is_core_frame(frame: dict[str, Any]) -> bool:
    return frame.get("kind") == "native" and is_core_image(frame.get("module"))


@dataclass
class Site:
    function: str
    file: str | None
    line: int | None
    callers: list[str]
    python: str | None
    increments: int = 0
    decrements: int = 0
    last_seq: int = 0
    in_core: bool = False
    is_python: bool = False
    seqs: list[int] = field(default_factory=list)
    culprit: dict[str, Any] | None = None
    c_caller: dict[str, Any] | None = None  # a Python site's activation was entered from this user C frame

    @property
    def unreleased(self) -> int:
        return self.increments - self.decrements

    def to_json(self) -> dict[str, Any]:
        return {"function": self.function, "callers": self.callers, "file": self.file, "line": self.line,
                "python": self.python, "increments": self.increments, "decrements": self.decrements,
                "unreleased": self.unreleased, "events": self.seqs, "culprit": self.culprit}


def site_of(stack: list[dict[str, Any]]) -> tuple[str, str | None, int | None, list[str], bool]:
    """(function, file, line, chain from writer to site, site is inside the core).

    The site frame is the first one outside the core: an extension's C
    function, or the Python line the eval loop was running."""
    chain: list[str] = []
    frames = [f for f in stack if f.get("function") not in REFCOUNT_HELPERS]
    for frame in frames:
        chain.append(str(frame.get("function")))
        if not is_core_frame(frame):
            return str(frame.get("function")), frame.get("file"), frame.get("line"), chain, False
    if frames:
        first = frames[0]
        return str(first.get("function")), first.get("file"), first.get("line"), chain[:1], True
    return "?", None, None, [], True


# Sites are keyed by function and file, not by line: a C function that increfs on
# one line and decrefs on the next (or a Python function that binds a name and
# drops it at its return) balances itself. The line shown is the first one seen.
SiteKey = tuple[str, Optional[str]]


def analyze(history: History) -> dict[str, Any]:
    sites: dict[SiteKey, Site] = {}
    zero_site: Site | None = None
    after_free = [e for e in history.events if e.kind in (ev.USE_AFTER_FREE, ev.DECREF_AFTER_FREE)]
    made = history.allocation if history.origin is not None else None
    stack = made.get("stack") if isinstance(made, dict) else None
    if isinstance(stack, list) and stack and history.initial:
        # A type watch caught the object at its allocation (typewatch.py): its first
        # reference was taken there, by the site that made it, not before the watch.
        function, file, line, chain, in_core = site_of(stack)
        frames = [f for f in stack if f.get("function") not in REFCOUNT_HELPERS]
        is_python = not in_core and bool(chain) and frames[len(chain) - 1].get("kind") == "python"
        python = made.get("python") if made is not None and isinstance(made.get("python"), str) else None
        made_site = sites[(function, file)] = Site(function, file, line, chain, python, in_core=in_core,
                                                         is_python=is_python)
        made_site.increments += max(history.initial, 0)
    for event in history.events:
        # A followed occupant's allocation is its first reference, taken by the allocating site.
        allocation = event.kind == ev.REUSE and event.seq == history.allocated_at
        if event.kind not in (ev.INCREF, ev.DECREF, ev.ZERO, ev.NEGATIVE, ev.DECREF_AFTER_FREE) and not allocation:
            continue
        function, file, line, chain, in_core = site_of(event.stack)
        key = (function, file)
        site = sites.get(key)
        if site is None:
            # The site frame itself (the chain's last frame, helpers skipped), not any same-named frame nearby.
            frames = [f for f in event.stack if f.get("function") not in REFCOUNT_HELPERS]
            is_python = not in_core and bool(chain) and frames[len(chain) - 1].get("kind") == "python"
            site = sites[key] = Site(function, file, line, chain, event.python, in_core=in_core, is_python=is_python,
                                     culprit=event.culprit,
                                     c_caller=_c_caller(frames, len(chain) - 1) if is_python else None)
        if allocation:
            site.increments += max(event.new, 0)
        elif event.delta > 0:
            site.increments += event.delta
        else:
            site.decrements += -event.delta
        site.last_seq = event.seq
        site.seqs.append(event.seq)
        if event.kind == ev.ZERO:
            zero_site = site
    handed = _hand_to_c_callers(sites)
    if isinstance(stack, list) and stack and history.initial:
        notes = ["Watched from its allocation: its first reference is charged to the site that allocated it."]
    else:
        notes = [
            "Only changes recorded while watching are counted; references held before the watch "
            f"started ({history.initial if history.initial is not None else '?'}) have no site.",
        ]
    notes += handed
    held = next((e.message for e in history.events if e.kind == ev.ZERO and e.message), None)
    if held:
        notes.append(f"At its decrement to zero the object was {held}: a reference that was never "
                     "counted (a borrowed reference stored or returned as new).")
    leaks = sorted((s for s in sites.values() if s.unreleased > 0),
                   key=lambda s: (s.in_core, s.is_python, -s.unreleased, -s.last_seq))
    if leaks:
        notes.append("A leak candidate is a site whose increments were never released by the same site; "
                     "a reference handed to a container or returned to a caller looks the same.")
    over: Site | None = None
    borrowed = borrowed_return(history)
    if borrowed is not None:
        over, why = borrowed
        notes.append(why)
    elif history.freed_at is not None:
        negatives = sorted((s for s in sites.values() if s.unreleased < 0),
                           key=lambda s: (s.in_core, s.is_python, -s.last_seq))
        if after_free:
            over = negatives[0] if negatives else zero_site
            notes.append(f"The object was freed at event {history.freed_at} while references were still in use: "
                         f"event {after_free[0].seq} ({after_free[0].kind}) touched it afterwards.")
        else:
            notes.append(f"The object was freed at event {history.freed_at}; no later use was recorded, "
                         "so the free may be legitimate.")
    elif not leaks:
        notes.append("No site holds unreleased increments and the object was not freed while watched.")
    return {"address": history.address, "type": history.type,
            "leak_candidates": [s.to_json() for s in leaks],
            "overdecref_candidate": over.to_json() if over else None,
            "notes": notes}


def borrowed_return(history: History) -> tuple[Site, str] | None:
    """The C function that returned the freed object as a new reference without counting it
    (see the module docstring), and the note that says why; None without that proof."""
    zero = next((e for e in history.events if e.seq == history.freed_at and e.kind == ev.ZERO), None)
    release = zero.release if zero is not None else None
    if zero is None or not release or release.get("watched_before_call") is not True or not release.get("function"):
        return None
    function = str(release["function"])
    frame = next((f for f in zero.stack if f.get("kind") == "python"), None)
    if frame is None:
        return None
    call_line = release.get("call_line")
    for event in history.events:
        if event.seq >= zero.seq:
            break
        raised = event.delta > 0 or (event.kind == ev.REUSE and event.seq == history.allocated_at)
        if raised and any(_same_call(f, frame, call_line, function) for f in event.stack):
            return None  # the count was raised under that call: not a borrowed return
    file = frame.get("file")
    where = f"{str(file).rsplit('/', 1)[-1]}:" if file else ""
    op = f" ({release.get('op')}{' ' + str(release['local']) if release.get('local') else ''})"
    site = Site(function, None, None, [function], f"{frame.get('function')} ({file}:{call_line})", decrements=1,
                last_seq=zero.seq, seqs=[zero.seq],
                culprit={"kind": "native", "function": function, "file": None, "line": None,
                         "module": release.get("module")})
    note = (f"{function} returned the object to the interpreter without raising its count (a borrowed reference "
            f"returned as new): the call {release.get('callee')} at {where}{call_line} raised no count while watched, "
            f"and the interpreter's release at {where}{frame.get('line')}{op} then freed it.")
    return site, note


def _same_call(frame: dict[str, Any], caller: dict[str, Any], call_line: object, function: str) -> bool:
    """``frame`` is the C function itself, or the caller's Python frame standing on the call's line."""
    if frame.get("kind") == "native":
        return frame.get("function") == function
    return (frame.get("kind") == "python" and frame.get("function") == caller.get("function")
            and frame.get("file") == caller.get("file") and frame.get("line") == call_line)


def _c_caller(frames: list[dict[str, Any]], index: int) -> dict[str, Any] | None:
    """The user C frame that entered the eval-loop activation of the Python frame at ``index``:
    outward past the interpreter's own frames, before any other Python frame."""
    for frame in frames[index + 1:]:
        if frame.get("kind") == "python":
            return None
        if is_user_frame(frame):
            return frame
    return None


def _hand_to_c_callers(sites: dict[SiteKey, Site]) -> list[str]:
    """Charge the unreleased increments of Python sites entered from C to that C caller."""
    notes = []
    for site in list(sites.values()):
        caller = site.c_caller
        if not site.is_python or caller is None or site.unreleased <= 0:
            continue
        key = (str(caller.get("function")), caller.get("file"))
        owner = sites.get(key)
        if owner is None:
            owner = sites[key] = Site(key[0], key[1], caller.get("line"), [site.function, key[0]], site.python,
                                      culprit=culprit_of([caller]))
        moved = site.unreleased
        owner.increments += moved
        owner.last_seq = max(owner.last_seq, site.last_seq)
        owner.seqs = sorted(set(owner.seqs) | set(site.seqs))
        site.increments -= moved
        notes.append(f"{moved} reference(s) returned by the Python function {site.function} to its C caller "
                     f"{key[0]} were never released: charged to {key[0]}.")
    return notes
