"""`pylife alloc-site ADDR`: where the object was allocated, from the target's tracemalloc tables."""

from __future__ import annotations

import argparse

from ..cpython import tracemalloc
from ..cpython.liveness import PREHEADERS
from ..errors import PylifeError, UserError
from ..report import Report
from ..session import Session
from .common import add_object_arguments, resolve_object

HELP = "Python traceback where the object at ADDR was allocated (needs the target to run with -X tracemalloc=N)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_object_arguments(parser)


def run(session: Session, args: argparse.Namespace) -> Report:
    address = resolve_object(session, args)
    mem = session.memory()
    runtime = session.runtime(mem)
    objects = session.objects(mem)
    traces = tracemalloc.state(session.target, mem, runtime)
    if not traces.tracing:
        raise UserError("tracemalloc is not tracing in the target: run it with -X tracemalloc=N "
                        "(or PYTHONTRACEMALLOC=N, or tracemalloc.start()) to record allocation sites")
    # tracemalloc keys the pointer the allocator returned: the object minus its pre-header.
    type_name: str | None = None
    try:
        tp = objects.type_of(address)
        type_name = tp.qualified
        keys = [address - runtime.layout.preheader_size(tp.flags, objects.is_gc(address, tp))]
    except PylifeError:
        keys = [address - pre for pre in PREHEADERS]
    trace = tracemalloc.find_trace(mem, objects, runtime, traces, keys)
    data = {
        "address": address,
        "type": type_name,
        "traced": trace is not None,
        "allocation": trace.key if trace else None,
        "size": trace.size if trace else None,
        # Oldest call first, like tracemalloc.Traceback and Python's own tracebacks.
        "frames": [{"file": f, "line": line} for f, line in reversed(trace.frames)] if trace else [],
        "total_frames": trace.total_nframe if trace else None,
        "max_frames": traces.max_nframe,
        "notes": [] if trace else ["no trace: allocated before tracemalloc started, by another allocator "
                                   "domain, or reused from a free list (the trace is of its first allocation)"],
    }
    return Report("alloc-site", data, warnings=list(runtime.layout.warnings))
