"""`pylife pymalloc`: arenas, pools and blocks per size class, like sys._debugmallocstats (live or core)."""

from __future__ import annotations

import argparse

from ..cpython.pymalloc_stats import heap_stats
from ..report import Report
from ..session import Session

HELP = "pymalloc's arenas, pools and blocks used/free per size class, read from memory (works on cores)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options besides --json


def run(session: Session, args: argparse.Namespace) -> Report:
    del args
    mem = session.memory()
    runtime = session.runtime(mem)
    stats = heap_stats(session.target, mem, runtime)
    return Report("pymalloc", stats.to_json(), warnings=list(runtime.layout.warnings))
