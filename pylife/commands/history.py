"""`pylife history`: recorded refcount histories, one event in full, balance analysis."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import UserError
from ..record import store
from ..record.balance import analyze
from ..record.events import History
from ..report import Report
from ..session import Session
from .common import add_object_arguments, has_object, resolve_object

HELP = "show recorded refcount histories (--full N: one event with its stack; --balance: leak/over-decref analysis)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_object_arguments(parser)  # only this object's history
    parser.add_argument("--full", type=int, metavar="SEQ", help="event SEQ with its merged C + Python stack")
    parser.add_argument("--balance", action="store_true", help="pair increments with decrements by site")
    parser.add_argument("--load", metavar="FILE", help="read histories from a JSONL log instead of this session")
    parser.add_argument("--clear", action="store_true", help="forget histories of objects no longer watched")


def run(session: Session, args: argparse.Namespace) -> Report:
    if args.clear:
        session.recorder.clear()
        return Report("message", {"message": "pylife: histories of unwatched objects cleared"})
    session.apply_pending()
    histories: list[History] = store.load(args.load) if args.load else list(session.recorder.histories.values())
    if has_object(args):
        address = resolve_object(session, args)
        histories = [h for h in histories if h.address == address]
        if not histories:
            raise UserError(f"no history for {address:#x}")
    if args.full is not None:
        for history in histories:
            for event in history.events:
                if event.seq == args.full:
                    return Report("event", {"address": history.address, "type": history.type, **event.to_json(),
                                            "culprit": event.culprit})
        raise UserError(f"no event {args.full} in the recorded histories")
    if args.balance:
        return Report("balance", {"objects": [analyze(h) for h in histories]})
    return Report("history", {"objects": [_with_culprits(h) for h in histories]})


def _with_culprits(history: History) -> dict[str, Any]:
    """The history's JSON, each event with its culprit frame (derived from its stack, not logged)."""
    data = history.to_json()
    for shown, event in zip(data["events"], history.events):
        shown["culprit"] = event.culprit
    return data
