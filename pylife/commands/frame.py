"""`pylife frame [N]`: select the Python frame that --py names are looked up in, and show it."""

from __future__ import annotations

import argparse

from ..cpython.attributes import Reader
from ..cpython.names import frame_names
from ..errors import PylifeError
from ..pyexpr import select_frame, set_python_frame
from ..report import Report
from ..session import Session

HELP = ("select Python frame N (numbered as 'pylife bt --python') for later --py expressions, until the "
        "process next stops or resumes; without N, show the selected frame")
MAX_NAMES = 200


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("number", nargs="?", type=int, metavar="N", help="Python frame number (0: the newest)")
    parser.add_argument("--thread", type=int, metavar="TID",
                        help="OS thread id, as 'pylife bt --all' prints it (default: the debugger's thread)")


def run(session: Session, args: argparse.Namespace) -> Report:
    if args.number is None and args.thread is None:
        selected = select_frame(session)
    else:
        selected = set_python_frame(session, args.number, args.thread)
    frame = selected.frame
    code = frame.code
    notes: list[str] = []
    local_names: list[str] = []
    try:
        names = frame_names(Reader(session.objects(session.memory())), frame)
        local_names = [name for name, value, _cell in names.slots if name and value][:MAX_NAMES]
    except PylifeError as exc:
        notes.append(f"local names unreadable: {exc}")
    data = {
        "tid": selected.tid,
        "frame": selected.index,
        "frames": selected.frame_count,
        "function": frame.function,
        "file": code.filename if code else None,
        "line": frame.line,
        "selected": session.python_frame is not None and session.python_frame.tid == selected.tid
        and session.python_frame.index == selected.index,
        "locals": local_names,
        "notes": notes,
    }
    return Report("frame", data)
