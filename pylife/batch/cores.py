"""`pylife core` and `pylife triage`: diagnose cores in a debugger, group them by crash signature."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import UserError
from . import launch
from . import report as reports

ET_CORE = 4
PT_NOTE = 4
NT_FILE = 0x46494C45  # "FILE": the mapped files (linux/elf.h)
TOP_FRAMES = 3  # frames of a crash signature
# Images whose frames say nothing about who is to blame.
RUNTIME_IMAGES = ("libc.so", "libc-", "ld-linux", "libpthread", "libpython", "/python3", "/python")
# Process start-up frames (crt1, glibc): below every program's stack.
STARTUP_FUNCTIONS = frozenset({"_start", "__libc_start_main", "__libc_start_call_main", "main"})


def executable_of(core: str) -> str | None:
    """The first file the core's NT_FILE note maps: the executable (the kernel lists it first)."""
    try:
        with open(core, "rb") as handle:
            header = handle.read(64)
            if header[:4] != b"\x7fELF" or header[4] != 2 or struct.unpack_from("<H", header, 16)[0] != ET_CORE:
                return None
            phoff, = struct.unpack_from("<Q", header, 32)
            phentsize, phnum = struct.unpack_from("<HH", header, 54)
            for index in range(min(phnum, 4096)):
                handle.seek(phoff + index * phentsize)
                p_type, _flags, offset, _vaddr, _paddr, filesz = struct.unpack("<IIQQQQ", handle.read(40))
                if p_type != PT_NOTE:
                    continue
                handle.seek(offset)
                found = _file_note(handle.read(min(filesz, 1 << 24)))
                if found:
                    return found
    except (OSError, struct.error, IndexError):
        return None
    return None


def _file_note(notes: bytes) -> str | None:
    position = 0
    while position + 12 <= len(notes):
        namesz, descsz, kind = struct.unpack_from("<III", notes, position)
        position += 12 + ((namesz + 3) & ~3)
        desc = notes[position:position + descsz]
        position += (descsz + 3) & ~3
        if kind != NT_FILE or len(desc) < 16:
            continue
        count, _page = struct.unpack_from("<QQ", desc, 0)
        names = desc[16 + 24 * count:].split(b"\0")
        return names[0].decode("utf-8", "replace") if names and names[0] else None
    return None


def is_core(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            header = handle.read(18)
    except OSError:
        return False
    return len(header) == 18 and header[:4] == b"\x7fELF" and struct.unpack_from("<H", header, 16)[0] == ET_CORE


def find_cores(paths: Iterable[str]) -> list[Path]:
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and is_core(p))
        elif path.is_file() and is_core(path):
            found.append(path)
        else:
            raise UserError(f"{name}: not a core file or a directory")
    return found


def analyze(core: str, executable: str | None, debugger: str) -> dict[str, Any]:
    """Open CORE in the debugger and run diagnose, bt --all and info on the objects involved."""
    if not os.path.isfile(core):
        raise UserError(f"{core}: no such file")
    exe = executable or executable_of(core)
    failures: list[str] = []
    if exe is None:
        failures.append(f"{core}: the core does not name its executable: give --exe")
    workspace = launch.Workspace(Path(_scratch()), Path(os.devnull))
    config = {"mode": "core", "core": os.path.abspath(core), "exe": exe, "events": str(workspace.events),
              "result": str(workspace.result)}
    workspace.config.write_text(json.dumps(config))
    outcome = launch.supervise(launch.debugger_argv(debugger, workspace.config), dict(os.environ), workspace,
                               launch.Output(), None)
    try:
        result = json.loads(workspace.result.read_text())
    except (OSError, ValueError):
        result = {"steps": []}
        failures.append(f"the {debugger} side wrote no result (exit status {outcome.returncode})")
    return reports.build("core", program=[exe] if exe else None, debugger=debugger, result=result, histories=[],
                         allocations={}, environment_=None, log=None, failures=failures, interrupted=None,
                         core=os.path.abspath(core))


def _scratch() -> str:
    import tempfile

    base = Path(os.environ.get("PYLIFE_LOG_DIR") or Path(tempfile.gettempdir()) / "pylife")
    base.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(prefix="core-", dir=base)


def _outside_runtime(frame: dict[str, Any]) -> bool:
    module = str(frame.get("module") or "")
    function = frame.get("function")
    return (frame.get("kind") == "native" and bool(function) and function not in STARTUP_FUNCTIONS
            and bool(module) and not any(part in module for part in RUNTIME_IMAGES))


def signature(document: dict[str, Any]) -> dict[str, Any]:
    """Kind of crash, the top frames outside libc and libpython, and the victim's type."""
    crash = document.get("crash") or {}
    frames = [str(f["function"]) for f in crash.get("stack", []) if _outside_runtime(f)][:TOP_FRAMES]
    victim = crash.get("victim") or {}
    victim_type = victim.get("type")
    if victim_type is None:
        dead = [o for o in crash.get("objects", []) if o.get("verdict") in reports.DEAD_VERDICTS and o.get("type")]
        victim_type = dead[0]["type"] if dead else None
    return {"kind": crash.get("kind") or "unreadable", "frames": frames, "victim_type": victim_type}


def triage(documents: list[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[str, dict[str, Any]] = {}
    for document in documents:
        key_data = signature(document)
        key = json.dumps(key_data, sort_keys=True)
        group = groups.setdefault(key, {**key_data, "count": 0, "cores": [], "example": document.get("core"),
                                        "summary": (document.get("crash") or {}).get("summary")})
        group["count"] += 1
        group["cores"].append(document.get("core"))
    rows = sorted(groups.values(), key=lambda g: (-g["count"], g["kind"]))
    return {"version": reports.SCHEMA_VERSION, "kind": "triage", "groups": rows, "cores": len(documents),
            "reports": documents, "failures": [f for d in documents for f in d["failures"]]}
