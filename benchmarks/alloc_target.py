"""Allocation-heavy target for benchmarks/bench_typewatch.py (runs under any CPython 3.8+).

Each iteration makes one instance of the Python class ``Other`` (through
PyType_GenericAlloc, like every class instance), a tuple, a dict and a list;
every 1000th iteration one ``Watched`` instance is kept. The loop times
itself and writes the seconds to $PYLIFE_BENCH_OUT.
"""

import collections
import os
import time

ITERATIONS = int(os.environ.get("PYLIFE_BENCH_ITERATIONS", "5000"))


class Other:
    pass


class Watched:
    pass


def work(iterations):
    keep = [collections.deque()]  # _collections is loaded: its static types are readied
    for i in range(iterations):
        other = Other()
        pair = (i, other)
        table = {"pair": pair}
        items = [other, pair, table]
        if i % 1000 == 0:
            keep.append((Watched(), items))
    return keep


start = time.perf_counter()
work(ITERATIONS)
elapsed = time.perf_counter() - start
with open(os.environ["PYLIFE_BENCH_OUT"], "w") as handle:
    handle.write(repr(elapsed))
