"""`pylife leaks`: the watched objects still alive with their unreleased references, the freed ones, uses after free.

The same screen pylife prints by itself when the process exits (gdb: the
exited event; lldb: a breakpoint on _exit, see pylife/dbg/lldb.py).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..record import store
from ..record.leaks import last_refcount, summarize
from ..render import text as text_render
from ..report import Report
from ..session import Session

HELP = ("the watched objects: which are still alive, with their unreleased references by site, which were freed "
        "and where, and every use after free found (printed by itself at exit)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--load", metavar="FILE", help="summarize the histories of a JSONL log instead of this session")


def run(session: Session, args: argparse.Namespace) -> Report:
    if args.load:
        histories = store.load(args.load)
        return Report("leaks", summarize([(h, last_refcount(h), False) for h in histories]))
    session.apply_pending()
    return Report("leaks", with_type_watches(session, session.recorder.leaks()))


def with_type_watches(session: Session, data: dict[str, Any]) -> dict[str, Any]:
    """The type watches' counts too: instances skipped for want of a slot are said, never dropped."""
    return {**data, "type_watches": session.type_watcher.status()}


def exit_screen(session: Session, exit_status: int | None) -> str:
    """The screen printed by itself when the process exits ("" when nothing was watched in it).

    The summary is kept on the recorder (``exit_summary``) for the batch driver."""
    recorder = session.recorder
    if not recorder.run_keys:
        return ""
    data = with_type_watches(session, recorder.leaks(at_exit=True, exit_status=exit_status))
    recorder.exit_summary = data
    return text_render.render(Report("leaks", data))
