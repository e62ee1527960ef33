#!/usr/bin/env python3
"""Backtrace benchmark: pylife bt vs CPython's py-bt vs pystack, side by side in one run.

For each interpreter it makes one core of a 500-deep recursion, then times on
that same core (and on a live process stopped at the same point):
  - `pylife bt` (merged C + Python) inside gdb and inside lldb-16,
  - `py-bt` from the interpreter's own pythonX.Y-gdb.py,
  - `pystack core --native` (installed into benchmarks/.venv by this script).
Commands are timed inside a fresh debugger each (cold caches, debugger start-up
excluded); pystack is timed as a whole process. Prints ratios, asserts nothing.

    python benchmarks/bench_bt.py [3.11 3.12 ...] [--repeat N]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import interpreter

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "benchmarks" / "recursion_target.py"
BENCH_VENV = ROOT / "benchmarks" / ".venv"

GDB_TIMER = r"""
import gdb, time, json, sys
command = {command!r}
start = time.perf_counter()
out = gdb.execute(command, to_string=True)
elapsed = time.perf_counter() - start
print("PYLIFE-BENCH " + json.dumps({{"seconds": elapsed, "lines": out.count("\n")}}))
"""

LLDB_TIMER = r"""
import lldb, time, json
command = {command!r}
result = lldb.SBCommandReturnObject()
start = time.perf_counter()
lldb.debugger.GetCommandInterpreter().HandleCommand(command, result)
elapsed = time.perf_counter() - start
print("PYLIFE-BENCH " + json.dumps({{"seconds": elapsed, "lines": (result.GetOutput() or "").count("\n"), "error": result.GetError()}}))
"""


def _measure(output: str) -> float:
    for line in output.splitlines():
        if line.startswith("PYLIFE-BENCH "):
            data = json.loads(line[len("PYLIFE-BENCH "):])
            if data.get("error"):
                raise RuntimeError(data["error"])
            return float(data["seconds"])
    raise RuntimeError("no measurement in debugger output:\n" + output[-2000:])


def gdb_time(python: Path, command: str, setup: list[str], core: Path | None, work: Path) -> float:
    script = work / "timer_gdb.py"
    script.write_text(GDB_TIMER.format(command=command))
    args = ["gdb", "-nx", "-batch"]
    for line in setup:
        args += ["-ex", line]
    if core is None:
        args += ["-ex", "run", "-ex", f"source {script}", "--args", str(python), str(TARGET)]
    else:
        args += ["-ex", f"source {script}", str(python), str(core)]
    return _measure(subprocess.run(args, capture_output=True, text=True, timeout=300).stdout)


def lldb_time(python: Path, command: str, core: Path | None, work: Path) -> float:
    script = work / "timer_lldb.py"
    script.write_text(LLDB_TIMER.format(command=command))
    args = ["lldb-16", "-b", "--no-lldbinit"]
    if core is not None:
        args += ["-c", str(core), str(python)]
    args += ["-o", f"command script import {ROOT / 'lldb_pylife.py'}"]
    if core is None:
        args += ["-o", "run"]
    args += ["-o", f"script exec(open({str(script)!r}).read())"]
    if core is None:
        args += ["--", str(python), str(TARGET)]
    return _measure(subprocess.run(args, capture_output=True, text=True, timeout=300).stdout)


def pystack_bin() -> Path | None:
    exe = BENCH_VENV / "bin" / "pystack"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        done = subprocess.run([str(BENCH_VENV / "bin" / "pip"), "install", "-q", "pystack"], capture_output=True)
        if done.returncode != 0:
            return None
    return exe


def best(samples: list[float]) -> float:
    return min(samples) if samples else float("nan")


def main(argv: list[str]) -> int:
    repeat = 3
    if "--repeat" in argv:
        repeat = int(argv[argv.index("--repeat") + 1])
        del argv[argv.index("--repeat"):argv.index("--repeat") + 2]
    minors = argv or ["3.11"]
    pystack = pystack_bin()
    rows = []
    with tempfile.TemporaryDirectory(prefix="pylife-bench-") as tmp:
        work = Path(tmp)
        for minor in minors:
            python = interpreter(minor)
            if python is None:
                print(f"{minor}: not installed, skipped")
                continue
            core = work / f"core-{minor}"
            subprocess.run(["gdb", "-nx", "-batch", "-ex", "run", "-ex", f"gcore {core}", "--args", str(python), str(TARGET)],
                           capture_output=True, check=True)
            pybt_script = python.parent / f"python{minor}-gdb.py"
            pylife_setup = [f"source {ROOT / 'gdb_pylife.py'}"]
            pybt_setup = [f"source {pybt_script}"]
            for mode, core_or_none in (("core", core), ("live", None)):
                pylife_gdb = best([gdb_time(python, "pylife bt", pylife_setup, core_or_none, work) for _ in range(repeat)])
                pybt = best([gdb_time(python, "py-bt", pybt_setup, core_or_none, work) for _ in range(repeat)])
                try:
                    pylife_lldb = best([lldb_time(python, "pylife bt", core_or_none, work) for _ in range(repeat)])
                except (RuntimeError, subprocess.TimeoutExpired, FileNotFoundError) as exc:
                    print(f"lldb measurement failed: {exc}")
                    pylife_lldb = float("nan")
                pystack_s = float("nan")
                if pystack is not None and mode == "core":
                    samples = []
                    for _ in range(repeat):
                        start = time.perf_counter()
                        subprocess.run([str(pystack), "core", str(core), str(python), "--native"], capture_output=True)
                        samples.append(time.perf_counter() - start)
                    pystack_s = best(samples)
                rows.append((minor, mode, pylife_gdb, pylife_lldb, pybt, pystack_s))
    print()
    print(f"500-deep recursion, best of {repeat}, seconds (ratios: how many times faster pylife-in-gdb is)")
    print(f"{'python':7} {'mode':5} {'pylife/gdb':>10} {'pylife/lldb':>11} {'py-bt':>8} {'pystack':>8} "
          f"{'py-bt/pylife':>13} {'pystack/pylife':>15} {'goal <=0.1s':>11}")
    for minor, mode, p_gdb, p_lldb, pybt, pst in rows:
        print(f"{minor:7} {mode:5} {p_gdb:10.3f} {p_lldb:11.3f} {pybt:8.3f} {pst:8.3f} "
              f"{pybt / p_gdb:12.1f}x {pst / p_gdb:14.1f}x {'yes' if p_gdb <= 0.1 else 'NO':>11}")
    if rows:
        print(f"median py-bt/pylife ratio: {statistics.median(r[4] / r[2] for r in rows):.1f}x (goal >= 5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
