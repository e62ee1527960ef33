"""What both adapters do on their debugger's process events, written once, in one order.

gdb reports these as events (exited, new_objfile, clear_objfiles, stop, cont);
lldb-16's Python API has no such events short of a listener thread, so its
adapter infers them (a changed process or module list at each command, an
_exit breakpoint, the stop id). Either way the adapter only says *what
happened*; the sequence of what pylife then forgets, deletes and re-arms is
here, and the line printed when a watch hit stops is made here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .commands.leaks import exit_screen
from .errors import PylifeError
from .render.escape import escape
from .session import Session
from .target import BreakHit, OnBreak, OnHit, WatchHit


def safe_point(session: Session) -> None:
    """The debugger allows creating and deleting breakpoints now (a command, a stop,
    new modules loaded): the adapter's deferred work first (deletions it had to put
    off inside a callback, breakpoints pending on a module), then the core's."""
    session.target.safe_point()
    session.at_safe_point()


def modules_changed(session: Session) -> None:
    """Images were loaded or unloaded (gdb: new_objfile, clear_objfiles; lldb: the
    module count changed): what was learnt of the runtime and of pcs is stale."""
    session.reset()
    session.target.forget_symbols()


def process_gone(session: Session) -> None:
    """The process exited, was killed or replaced: its watches and type-watch hooks
    end with it (histories are kept, closed), every handle pylife holds in it is
    deleted, the adapter's per-process state dropped, then a safe point."""
    handles = session.recorder.forget_process() + session.type_watcher.forget_process()
    for handle in handles:
        try:
            session.target.remove(handle)
        except PylifeError:
            pass
    session.target.forget_process()
    modules_changed(session)
    safe_point(session)


def ran(session: Session) -> None:
    """The process resumed or stopped: a `pylife frame` selection is gone, like the
    debugger's own frame selection."""
    session.forget_python_frame()


def exit_summary(session: Session, exit_status: int | None) -> str:
    """The leaks screen printed by itself when the process exits ("" when nothing was
    watched). Never a traceback on the way out: a failure is one line."""
    try:
        return exit_screen(session, exit_status)
    except Exception as exc:  # a debugger callback: one line, never a traceback
        return escape(f"pylife: cannot summarize at exit: {type(exc).__name__}: {exc}") + "\n"


@dataclass(frozen=True)
class HitOutcome:
    """What an adapter does after a watchpoint or break_at hit: stop at the prompt or run on,
    and the line to print when it stops (escaped: it names target functions and types)."""

    stop: bool
    message: str | None


def watch_hit(session: Session, on_hit: OnHit, hit: WatchHit, handle: int) -> HitOutcome:
    """Run the recorder's callback for one hit of watchpoint ``handle``.

    A failure inside it stops at the prompt with one line: a traceback in a
    debugger callback would scroll past thousands of hits."""
    try:
        stop = bool(on_hit(hit))
    except Exception as exc:  # a debugger callback: one line, never a traceback
        return HitOutcome(True, escape(f"pylife: watchpoint {handle}: internal error: {type(exc).__name__}: {exc}"))
    return HitOutcome(stop, session.stop_message() if stop else None)


def break_hit(on_hit: OnBreak, hit: BreakHit, handle: int) -> HitOutcome:
    """Run a break_at hook's callback (type watches) for one hit of breakpoint ``handle``:
    the same one line and stop as a watch hit when it fails."""
    try:
        return HitOutcome(bool(on_hit(hit)), None)
    except Exception as exc:  # a debugger callback: one line, never a traceback
        return HitOutcome(True, escape(f"pylife: breakpoint {handle}: internal error: {type(exc).__name__}: {exc}"))
