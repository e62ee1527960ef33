"""What the integration tests can run against: interpreters and debuggers on this machine.

Interpreters are the newest patch release of each CPython 3.8-3.13 under
``$(pyenv root)/versions``; a missing one is skipped, never an error.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "objects_fixture.py"
GDB_ENTRY = REPO_ROOT / "gdb_pylife.py"
LLDB_ENTRY = REPO_ROOT / "lldb_pylife.py"
LLDB_ADAPTER = REPO_ROOT / "pylife" / "dbg" / "lldb.py"

MINORS = tuple(f"3.{x}" for x in range(8, 14))
DEBUGGERS = ("gdb", "lldb")
DEBUGGER_PROGRAMS = {"gdb": "gdb", "lldb": "lldb-16"}


@dataclass(frozen=True)
class Interpreter:
    minor: str  # "3.11"
    version: str  # "3.11.7"
    path: Path


def pyenv_root() -> Path | None:
    root = os.environ.get("PYENV_ROOT")
    if root:
        return Path(root)
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            out = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out.strip():
            return Path(out.strip())
    default = Path.home() / ".pyenv"
    return default if default.is_dir() else None


@functools.cache
def interpreters() -> dict[str, Interpreter | None]:
    """minor -> newest installed patch release (or None when missing)."""
    root = pyenv_root()
    found: dict[str, Interpreter | None] = {}
    for minor in MINORS:
        best: tuple[int, Interpreter] | None = None
        if root is not None:
            pattern = re.compile(rf"^{re.escape(minor)}\.(\d+)$")  # no 3.X-dev, no 3.13.0t
            for directory in sorted((root / "versions").glob(f"{minor}.*")):
                match = pattern.match(directory.name)
                binary = directory / "bin" / f"python{minor}"
                if match and binary.is_file() and os.access(binary, os.X_OK):
                    micro = int(match.group(1))
                    if best is None or micro > best[0]:
                        best = (micro, Interpreter(minor, directory.name, binary))
        found[minor] = best[1] if best else None
    return found


@functools.cache
def free_threaded_interpreters() -> list[Path]:
    """Free-threaded builds: pyenv's 3.1X.Yt, python3.1Xt on PATH (tests/integration/test_free_threaded.py)."""
    found: list[Path] = []
    root = pyenv_root()
    if root is not None:
        for directory in sorted((root / "versions").glob("3.*t")):
            match = re.match(r"^(3\.\d+)\.\d+t$", directory.name)
            binary = directory / "bin" / f"python{match.group(1)}t" if match else None
            if binary is not None and binary.is_file():
                found.append(binary)
    for minor in ("3.13", "3.14", "3.15"):
        on_path = shutil.which(f"python{minor}t")
        if on_path:
            found.append(Path(on_path))
    return found


@functools.cache
def debugger_paths() -> dict[str, str | None]:
    return {name: shutil.which(program) for name, program in DEBUGGER_PROGRAMS.items()}


def lldb_adapter_ready() -> bool:
    return LLDB_ENTRY.is_file() and LLDB_ADAPTER.is_file()


def debugger_skip_reason(debugger: str) -> str | None:
    """Why a debugger cannot be driven, or None when it can."""
    program = DEBUGGER_PROGRAMS[debugger]
    if debugger_paths()[debugger] is None:
        return f"{program} not found on PATH"
    if debugger == "lldb" and not lldb_adapter_ready():
        return f"the LLDB adapter is not there yet ({LLDB_ENTRY.name}, pylife/dbg/lldb.py)"
    return None


def summary_lines() -> list[str]:
    lines = []
    interps = interpreters()
    ran = [f"{i.version} ({i.path})" for i in interps.values() if i is not None]
    missing = [minor for minor, i in interps.items() if i is None]
    lines.append(f"interpreters found: {len(ran)} of {len(interps)}")
    lines.extend(f"  + {entry}" for entry in ran)
    if missing:
        lines.append("interpreters MISSING (their tests were SKIPPED): " + ", ".join(missing))
    threaded = free_threaded_interpreters()
    lines.append(f"free-threaded CPython: {threaded[0]}" if threaded
                 else "free-threaded CPython: NONE FOUND (test_free_threaded.py SKIPPED; fake images only)")
    for name, program in DEBUGGER_PROGRAMS.items():
        path = debugger_paths()[name]
        reason = debugger_skip_reason(name)
        if reason is None:
            lines.append(f"debugger {program}: {path}")
        else:
            lines.append(f"debugger {program}: NOT USABLE, its tests were SKIPPED: {reason}")
    return lines
