"""What the integration tests can run against: interpreters and debuggers on this machine.

Interpreters are the newest patch release of each CPython 3.8-3.13 under
``$(pyenv root)/versions``, and Debian sid's python3.14/3.15 and their debug
builds python3.14d/3.15d in the sid root that scripts/make_sid_root.sh makes
($PYLIFE_SID_ROOT). A sid interpreter is debugged by the root's own gdb 18 and
lldb-21, run by chroot (the checkout and /tmp have the same paths inside).
A missing one is skipped, loudly, never an error.
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

SID_ROOT = Path(os.environ.get("PYLIFE_SID_ROOT", "/var/cache/pylife/sid-root"))
SID_RELEASES = ("3.14", "3.15")
SID_MINORS = (*SID_RELEASES, "3.14d", "3.15d")  # "d": the Py_DEBUG builds of python3.X-dbg
SID_DEBUGGER_PROGRAMS = {"gdb": "gdb", "lldb": "lldb-21"}  # gdb 18, lldb-21: both embed Python 3.14


@dataclass(frozen=True)
class Interpreter:
    minor: str  # "3.11", "3.14d"
    version: str  # "3.11.7"
    path: Path  # as the debugger sees it: inside the root for a sid interpreter
    root: Path | None = None  # the sid root it runs in, by chroot


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
    found.update(sid_interpreters())
    return found


def _mount_points() -> set[str]:
    """Every mount point (os.path.ismount misses a bind mount from the same file system)."""
    try:
        with open("/proc/self/mountinfo") as handle:
            return {line.split()[4].replace("\\040", " ") for line in handle if len(line.split()) > 4}
    except OSError:
        return set()


@functools.cache
def sid_skip_reason() -> str | None:
    """Why the sid root cannot be used, or None when it can."""
    if not (SID_ROOT / ".pylife-packages").is_file():
        return f"no Debian sid root at {SID_ROOT} (scripts/make_sid_root.sh makes it)"
    mounted = _mount_points()
    for inside in ("proc", "dev/pts", "tmp", str(REPO_ROOT).lstrip("/")):
        if str(SID_ROOT / inside) not in mounted:
            return f"{SID_ROOT}/{inside} is not mounted (scripts/make_sid_root.sh mounts it)"
    try:
        shown = (SID_ROOT / str(REPO_ROOT).lstrip("/")).stat()
        here = REPO_ROOT.stat()
    except OSError as error:
        return f"{SID_ROOT}{REPO_ROOT} cannot be read: {error}"
    if (shown.st_dev, shown.st_ino) != (here.st_dev, here.st_ino):
        return f"{SID_ROOT}{REPO_ROOT} shows another (deleted) checkout (scripts/make_sid_root.sh mounts it again)"
    return None


@functools.cache
def sid_interpreters() -> dict[str, Interpreter | None]:
    """The sid root's python3.14, 3.15, 3.14d, 3.15d (None each when the root is not usable)."""
    found: dict[str, Interpreter | None] = dict.fromkeys(SID_MINORS)
    if sid_skip_reason() is not None:
        return found
    for minor in SID_MINORS:
        path = Path(f"/usr/bin/python{minor}")
        if not (SID_ROOT / path.relative_to("/")).is_file():
            continue
        try:
            version = subprocess.run(["chroot", str(SID_ROOT), str(path), "-c", "import platform; print(platform.python_version())"],
                                     capture_output=True, text=True, timeout=60, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        found[minor] = Interpreter(minor, version + ("d" if minor.endswith("d") else ""), path, SID_ROOT)
    return found


def root_of(python: str | Path | None) -> Path | None:
    """The root a sid interpreter runs in, None for the machine's own."""
    for interpreter in sid_interpreters().values():
        if interpreter is not None and python is not None and str(python) == str(interpreter.path):
            return interpreter.root
    return None


def debugger_program(debugger: str, root: Path | None) -> str:
    return (SID_DEBUGGER_PROGRAMS if root is not None else DEBUGGER_PROGRAMS)[debugger]


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


def debugger_skip_reason(debugger: str, minor: str | None = None) -> str | None:
    """Why a debugger cannot be driven (for ``minor``'s interpreter), or None when it can."""
    if minor in SID_MINORS:
        reason = sid_skip_reason()
        program = SID_DEBUGGER_PROGRAMS[debugger]
        if reason is None and not (SID_ROOT / "usr" / "bin" / program).is_file():
            reason = f"{program} is not installed in {SID_ROOT}"
        return reason
    program = DEBUGGER_PROGRAMS[debugger]
    if debugger_paths()[debugger] is None:
        return f"{program} not found on PATH"
    if debugger == "lldb" and not lldb_adapter_ready():
        return f"the LLDB adapter is not there yet ({LLDB_ENTRY.name}, pylife/dbg/lldb.py)"
    return None


def summary_lines() -> list[str]:
    lines = []
    interps = interpreters()
    ran = [f"{i.version} ({i.path}{' in the sid root' if i.root else ''})" for i in interps.values() if i is not None]
    missing = [minor for minor, i in interps.items() if i is None]
    lines.append(f"interpreters found: {len(ran)} of {len(interps)}"
                 f" (pyenv 3.8-3.13, sid {', '.join(SID_MINORS)})")
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
    reason = sid_skip_reason()
    if reason is not None:
        lines.append(f"Debian sid root MISSING (3.14/3.15 tests and sid gdb/lldb were SKIPPED): {reason}")
    else:
        lines.append(f"Debian sid root: {SID_ROOT}")
        for name, program in SID_DEBUGGER_PROGRAMS.items():
            reason = debugger_skip_reason(name, SID_MINORS[0])
            lines.append(f"  debugger {program} (sid, by chroot): "
                         + ("ok" if reason is None else f"NOT USABLE, its tests were SKIPPED: {reason}"))
    return lines
