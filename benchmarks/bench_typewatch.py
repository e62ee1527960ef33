#!/usr/bin/env python3
"""Type-watch benchmark: what `pylife watch --type` costs an allocation-heavy program.

Same program (benchmarks/alloc_target.py: per iteration one instance of a
Python class ``Other``, a tuple, a dict and a list; one ``Watched`` every
1000), same interpreter, side by side in one run, per debugger:
  none         - the debugger runs the program, no pylife watch
  NoSuchType   - `pylife watch --type NoSuchType`: pending all along (only the
                 PyType_Ready hook; no allocation hook is ever enabled)
  Watched      - a Python class: its allocation hook sits on PyType_GenericAlloc's
                 returns, so every ``Other()`` traps and the debugger evaluates
                 `rax->ob_type == Watched` (pylife runs only for the 1 in 1000 that match)
  deque        - `collections.deque`, a static type: every allocator is hooked
                 (PyObject_New/GC_New/GC_NewVar too), none matches in the loop
All watches are given before `run`, with --stop-on never. The target times its
own loop; printed: seconds, ratio to the same debugger without a watch, and the
extra microseconds per loop iteration. Asserts nothing.

    python benchmarks/bench_typewatch.py [3.12] [--iterations N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_common import interpreter, minor_and_iterations

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "benchmarks" / "alloc_target.py"
MODES = {"none": None, "NoSuchType": "NoSuchType", "Watched": "Watched", "deque": "collections.deque"}


def run(debugger: str, python: Path, type_name: str | None, env: dict[str, str]) -> float:
    out = Path(env["PYLIFE_BENCH_OUT"])
    out.unlink(missing_ok=True)
    watch = [f"pylife watch --type {type_name} --stop-on never"] if type_name else []
    if debugger == "gdb":
        argv = ["gdb", "-nx", "-batch", "-ex", f"source {ROOT / 'gdb_pylife.py'}"]
        for command in [*watch, "run"]:
            argv += ["-ex", command]
        argv += ["--args", str(python), str(TARGET)]
    elif debugger == "lldb":
        argv = ["lldb-16", "-b", "--no-lldbinit", "-o", f"command script import {ROOT / 'lldb_pylife.py'}"]
        for command in [*watch, "run"]:
            argv += ["-o", command]
        argv += ["--", str(python), str(TARGET)]
    else:
        argv = [str(python), str(TARGET)]
    subprocess.run(argv, env=env, capture_output=True, text=True, timeout=3600)
    return float(out.read_text())


def main(argv: list[str]) -> int:
    minor, iterations = minor_and_iterations(argv, 5000)
    python = interpreter(minor)
    if python is None:
        print(f"CPython {minor} is not installed")
        return 1
    with tempfile.TemporaryDirectory(prefix="pylife-bench-") as tmp:
        env = dict(os.environ, PYLIFE_BENCH_OUT=str(Path(tmp) / "seconds"), PYLIFE_BENCH_ITERATIONS=str(iterations),
                   PYLIFE_LOG_DIR=tmp)
        bare = run("python", python, None, env)
        print(f"CPython {minor}, {iterations} iterations; no debugger: {bare:.3f} s")
        for debugger in ("gdb", "lldb"):
            results: dict[str, float] = {}
            for mode, type_name in MODES.items():
                try:
                    results[mode] = run(debugger, python, type_name, env)
                except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
                    print(f"  {debugger} {mode}: failed ({exc})")
            base = results.get("none")
            for mode, seconds in results.items():
                ratio = f"{seconds / base:6.1f}x" if base else ""
                extra = f"{(seconds - base) / iterations * 1e6:8.1f} us/iteration" if base else ""
                print(f"  {debugger:4} {mode:11} {seconds:8.3f} s  {ratio} no watch  {extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
