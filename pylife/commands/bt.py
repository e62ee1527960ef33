"""`pylife bt`: merged C + Python backtraces, one thread or all, live or core."""

from __future__ import annotations

import argparse

from ..cpython.thread_stack import MAX_NATIVE_FRAMES, StackReader
from ..cpython.threads import PyThread, gil_holder, python_threads
from ..errors import UserError
from ..report import Report
from ..session import Session
from ..target import ThreadInfo

HELP = "merged C + Python backtrace of the current thread (--all: every thread)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", help="every thread; the GIL holder is marked")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--python", action="store_true", help="Python frames only (like py-bt)")
    mode.add_argument("--native", action="store_true", help="C frames only, eval loops labelled with their Python frames")
    parser.add_argument("--limit", type=int, default=0, help="at most N frames per thread (0: no limit)")
    parser.add_argument("--no-source", action="store_true", help="do not print source lines")


def run(session: Session, args: argparse.Namespace) -> Report:
    if args.limit < 0:
        raise UserError("--limit must be >= 0")
    target = session.target
    mem = session.memory()
    runtime = session.runtime(mem)
    objects = session.objects(mem)
    reader = StackReader(target)
    mode = "python" if args.python else "native" if args.native else "merged"
    os_threads = list(target.threads())
    py_threads = python_threads(mem, runtime)
    holder = gil_holder(mem, runtime)
    current = target.current_thread()
    if args.all:
        selected = os_threads
    else:
        selected = [t for t in os_threads if t.tid == current] or os_threads[:1]
    by_tid = reader.match(mem, runtime, py_threads, os_threads)
    matched = {t.tstate for t in by_tid.values()}
    unmatched = [t for t in py_threads if t.tstate not in matched]
    limit = args.limit or None
    # The C frames are unwound at most as deep as --limit asks.
    native_limit = 0 if mode == "python" else limit or MAX_NATIVE_FRAMES
    threads_data = []

    def add(os_thread: ThreadInfo | None, py_thread: PyThread | None) -> None:
        stack = reader.read(mem, objects, runtime, os_thread.tid if os_thread else None,
                            tstate=py_thread.tstate if py_thread else None, native_limit=native_limit)
        threads_data.append({
            "tid": os_thread.tid if os_thread else (py_thread.native_thread_id if py_thread else None),
            "name": os_thread.name if os_thread else None,
            "holds_gil": py_thread is not None and py_thread.tstate == holder,
            "tstate": py_thread.tstate if py_thread else None,
            "frames": [f.to_json() for f in stack.merged(mode, limit)],
            "notes": stack.notes,
        })

    for os_thread in selected:
        add(os_thread, by_tid.get(os_thread.tid))
    if args.all:
        for thread in unmatched:  # e.g. a thread state whose OS thread is gone
            add(None, thread)
    return Report("bt", {"threads": threads_data, "show_source": not args.no_source})
