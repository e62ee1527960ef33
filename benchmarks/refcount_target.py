"""Benchmark target: one object whose refcount changes many times, from Python and from C.

Stops itself with SIGTRAP after writing the object's address to PYLIFE_BENCH_ADDR
so the debugger can set its watchpoint, then runs N iterations: a Python-level
incref/decref pair (a local rebinding) and a C-level pair (list.append/pop).
Each iteration changes the count 4 times.
"""

import os
import signal
import time


class Tracked:
    pass


def main() -> None:
    iterations = int(os.environ.get("PYLIFE_BENCH_ITERATIONS", "2500"))
    obj = Tracked()
    holder: list = []
    with open(os.environ["PYLIFE_BENCH_ADDR"], "w") as out:
        out.write(str(id(obj)))
    os.kill(os.getpid(), signal.SIGTRAP)
    start = time.perf_counter()
    for _ in range(iterations):
        alias = obj  # the incref/decref is the point
        del alias
        holder.append(obj)
        holder.pop()
    elapsed = time.perf_counter() - start
    with open(os.environ["PYLIFE_BENCH_ADDR"] + ".time", "w") as out:
        out.write(repr(elapsed))


main()
