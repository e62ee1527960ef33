"""Benchmark target: a 500-deep Python recursion that stops itself with SIGTRAP."""

import os
import signal
import sys

DEPTH = int(os.environ.get("PYLIFE_BENCH_DEPTH", "500"))
sys.setrecursionlimit(DEPTH + 1000)


def recurse(n: int) -> int:
    if n == 0:
        os.kill(os.getpid(), signal.SIGTRAP)
        return 0
    return recurse(n - 1) + 1


recurse(DEPTH)
