#!/usr/bin/env python3
"""`pylife info` on an old tracked object, with a small heap and with 1,000,000 objects in
generation 2, side by side in one run, in gdb and in lldb-16.

Finding the generation walks the object's GC list towards a generation head in
both directions within a budget (pylife/cpython/gc.py), so the cost must not
grow with the heap: the printed ratio (big heap / small heap) stays near 1. A
whole-list walk took 46 s in lldb-16 and 2.6 s in gdb at 1,000,000 objects.
Each command runs in a fresh debugger (start-up excluded). Prints, asserts nothing.

    python benchmarks/bench_gc_info.py [3.12] [--big N]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from bench_bt import GDB_TIMER, LLDB_TIMER, ROOT, _measure, interpreter

TARGET = ROOT / "benchmarks" / "gc_heap_target.py"


def _gdb(python: Path, count: int, which: str, work: Path) -> tuple[float, str]:
    out = work / f"gdb-{count}.json"
    probe = work / "probe_gdb.py"
    probe.write_text(f"import json\naddress = json.load(open({str(out)!r}))[{which!r}]\n"
                     + GDB_TIMER.format(command="pylife info {address:#x} --json").replace(
                         "command = 'pylife info {address:#x} --json'", "command = f'pylife info {address:#x} --json'"))
    args = ["gdb", "-nx", "-batch", "-ex", f"source {ROOT / 'gdb_pylife.py'}", "-ex", "run", "-ex", f"source {probe}",
            "--args", str(python), str(TARGET), str(count), str(out)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=900).stdout
    return _measure(result), result


def _lldb(python: Path, count: int, which: str, work: Path) -> tuple[float, str]:
    out = work / f"lldb-{count}.json"
    probe = work / "probe_lldb.py"
    probe.write_text(f"import json\naddress = json.load(open({str(out)!r}))[{which!r}]\n"
                     + LLDB_TIMER.format(command="pylife info {address:#x} --json").replace(
                         "command = 'pylife info {address:#x} --json'", "command = f'pylife info {address:#x} --json'"))
    args = ["lldb-16", "-b", "--no-lldbinit", "-o", f"command script import {ROOT / 'lldb_pylife.py'}", "-o", "run",
            "-o", f"script exec(open({str(probe)!r}).read())", "--", str(python), str(TARGET), str(count), str(out)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=900).stdout
    return _measure(result), result


def main(argv: list[str]) -> int:
    big = int(argv[argv.index("--big") + 1]) if "--big" in argv else 1_000_000
    minors = [a for a in argv if a.startswith("3.")] or ["3.12"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for minor in minors:
            python = interpreter(minor)
            if python is None:
                print(f"{minor}: not installed, skipped")
                continue
            for name, run in (("gdb", _gdb), ("lldb-16", _lldb)):
                for which in ("middle", "oldest"):
                    small, _ = run(python, 1000, which, work)
                    large, _ = run(python, big, which, work)
                    print(f"{minor} {name:8} {which:6}: 1,000 objects {small * 1000:8.1f} ms, "
                          f"{big:,} objects {large * 1000:8.1f} ms, ratio {large / small:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
