#!/usr/bin/env python3
"""Watch benchmark: cost per refcount event, side by side in one run.

Same program (benchmarks/refcount_target.py: >= 10,000 refcount changes, through
a Python loop and through C list methods), same interpreter, three ways in gdb:
  floor  - a gdb.Breakpoint write watchpoint whose stop() returns False (does nothing)
  cli    - `watch -l` + `commands; silent; bt 8; continue; end`
  pylife - `pylife watch` recording full events (default depth 16)
and in lldb-16: the floor (a watchpoint with a callback that continues) and pylife.
The target times its own loop; per-event cost = loop time / refcount changes,
where the number of changes is what pylife recorded for the same program (a
CPython version dependent 4-6 per iteration). Prints ratios to the floor;
asserts nothing.

    python benchmarks/bench_watch.py [3.12] [--iterations N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_common import interpreter, minor_and_iterations

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "benchmarks" / "refcount_target.py"

GDB_FLOOR = """
import gdb
class Floor(gdb.Breakpoint):
    def stop(self):
        return False
address = int(open({addr!r}).read())
Floor(f"*(unsigned long *) {{address:#x}}", gdb.BP_WATCHPOINT, gdb.WP_WRITE).silent = True
gdb.execute("continue")
"""
GDB_CLI = """
import gdb
address = int(open({addr!r}).read())
gdb.execute(f"watch -l *(unsigned long *) {{address:#x}}")
gdb.execute("commands\\nsilent\\nbt 8\\ncontinue\\nend")
gdb.execute("continue")
"""
GDB_PYLIFE = """
import gdb
address = int(open({addr!r}).read())
gdb.execute(f"pylife watch {{address:#x}} --stop-on never {extra}")
gdb.execute("continue")
"""
LLDB_FLOOR = """
import lldb
address = int(open({addr!r}).read())
target = lldb.debugger.GetSelectedTarget()
error = lldb.SBError()
wp = target.WatchAddress(address, 8, False, True, error)
lldb.debugger.HandleCommand(f"watchpoint command add -s python -o 'return False' {{wp.GetID()}}")
lldb.debugger.HandleCommand("continue")
"""
LLDB_PYLIFE = """
import lldb
address = int(open({addr!r}).read())
lldb.debugger.HandleCommand(f"pylife watch {{address:#x}} --stop-on never {extra}")
lldb.debugger.HandleCommand("continue")
"""


def run_gdb(python: Path, body: str, work: Path, env: dict[str, str]) -> float:
    script = work / "drive_gdb.py"
    script.write_text(body)
    addr = env["PYLIFE_BENCH_ADDR"]
    Path(addr + ".time").unlink(missing_ok=True)
    subprocess.run(["gdb", "-nx", "-batch", "-ex", f"source {ROOT / 'gdb_pylife.py'}", "-ex", "run", "-ex", f"source {script}",
                    "--args", str(python), str(TARGET)], env=env, capture_output=True, text=True, timeout=3600)
    return float(Path(addr + ".time").read_text())


def run_lldb(python: Path, body: str, work: Path, env: dict[str, str]) -> float:
    script = work / "drive_lldb.py"
    script.write_text(body)
    addr = env["PYLIFE_BENCH_ADDR"]
    Path(addr + ".time").unlink(missing_ok=True)
    subprocess.run(["lldb-16", "-b", "--no-lldbinit", "-o", f"command script import {ROOT / 'lldb_pylife.py'}", "-o", "run",
                    "-o", f"script exec(open({str(script)!r}).read())", "--", str(python), str(TARGET)],
                   env=env, capture_output=True, text=True, timeout=3600)
    return float(Path(addr + ".time").read_text())


def main(argv: list[str]) -> int:
    minor, iterations = minor_and_iterations(argv, 2500)
    python = interpreter(minor)
    if python is None:
        print(f"CPython {minor} is not installed")
        return 1
    with tempfile.TemporaryDirectory(prefix="pylife-bench-") as tmp:
        work = Path(tmp)
        env = dict(os.environ, PYLIFE_BENCH_ADDR=str(work / "addr"), PYLIFE_BENCH_ITERATIONS=str(iterations),
                   PYLIFE_LOG_DIR=str(work))
        addr = env["PYLIFE_BENCH_ADDR"]
        results: dict[str, float] = {}
        # pylife first: its log says how many refcount changes one run makes.
        pylife_seconds = run_gdb(python, GDB_PYLIFE.format(addr=addr, extra=""), work, env)
        events = sum(line.count('"record":"event"') for log in work.glob("history-*.jsonl") for line in log.open())
        if events == 0:
            print("pylife recorded no event: cannot compute per-event costs")
            return 1
        results["gdb pylife"] = pylife_seconds / events * 1e6
        plans = [
            ("gdb floor", lambda: run_gdb(python, GDB_FLOOR.format(addr=addr), work, env)),
            ("gdb cli bt 8", lambda: run_gdb(python, GDB_CLI.format(addr=addr), work, env)),
            ("gdb pylife --depth 4", lambda: run_gdb(python, GDB_PYLIFE.format(addr=addr, extra="--depth 4"), work, env)),
            ("lldb floor", lambda: run_lldb(python, LLDB_FLOOR.format(addr=addr), work, env)),
            ("lldb pylife", lambda: run_lldb(python, LLDB_PYLIFE.format(addr=addr, extra=""), work, env)),
        ]
        for name, plan in plans:
            try:
                results[name] = plan() / events * 1e6
            except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
                print(f"{name}: failed ({exc})")
    print(f"\nCPython {minor}: {events} refcount changes; microseconds per event and ratio to the same debugger's floor")
    order = ["gdb floor", "gdb cli bt 8", "gdb pylife", "gdb pylife --depth 4", "lldb floor", "lldb pylife"]
    for name, micros in sorted(results.items(), key=lambda kv: order.index(kv[0])):
        floor = results.get("lldb floor" if name.startswith("lldb") else "gdb floor")
        ratio = f"{micros / floor:5.1f}x floor" if floor else ""
        print(f"  {name:22} {micros:9.0f} us  {ratio}")
    print("goal: pylife <= 2x the floor of its debugger")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
