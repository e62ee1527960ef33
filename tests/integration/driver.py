"""Run pylife commands in a real gdb or lldb-16 and hand back what each one printed.

One debugger process per session: the debugger loads pylife, gets a target
(a launched fixture stopped by its own SIGTRAP, a core, or a bare process),
then `drive_gdb.py` / `drive_lldb.py` run every command through the
debugger's own command interpreter and write one record per command to a
JSON file (see drive_common.py). Tests assert on those records.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .drive_common import load_truth
from .environment import GDB_ENTRY, LLDB_ENTRY, debugger_program, root_of

HERE = Path(__file__).resolve().parent
DRIVE_GDB = HERE / "drive_gdb.py"
DRIVE_LLDB = HERE / "drive_lldb.py"
SESSION_TIMEOUT = 180  # seconds for one whole debugger session

# Objects the fixture creates (tests/fixtures/objects_fixture.py).
OBJECT_NAMES = (
    "str_ascii", "str_latin1", "str_ucs2", "str_ucs4", "str_long", "bytes",
    "int_small", "int_big_pos", "int_big_neg", "float", "true", "false", "none",
    "tuple", "tuple_1", "tuple_empty", "list", "list_nested", "list_self", "list_long",
    "dict", "dict_empty", "set", "frozenset", "set_empty", "class", "instance",
    "type_int", "function", "code", "module", "gc_gen2", "gc_gen1", "gc_gen0",
    "long_name_instance", "odd_name_instance",
)  # fmt: skip

# Error cases run in every CPython session: label -> command template.
ERROR_COMMANDS = {
    "err_implausible_json": "pylife info 0x10 --json",
    "err_implausible": "pylife info 0x10",
    "err_unmapped_json": "pylife info 0x1000 --json",
    "err_unmapped": "pylife info 0x1000",
    "err_not_object_json": "pylife info {bytes_payload} --json",
    "err_not_object": "pylife info {bytes_payload}",
    "err_expression_json": "pylife info no_such_symbol_for_pylife --json",
    "err_expression": "pylife info no_such_symbol_for_pylife",
    "err_usage_json": "pylife info --json",
    "err_usage": "pylife no-such-verb",
}
# Target text in text output (tests/integration/test_hostile.py).
HOSTILE_COMMANDS = {
    "text:odd_name_instance": "pylife info {odd_name_instance}",
    "text:long_name_instance": "pylife info {long_name_instance}",
    "interior_zeros_json": "pylife info {zeros_payload} --json",
}
# --py expressions at the fixture's stop (frames: #0 trap, #1 stop, #2 main, #3 <module>).
PYEXPR_COMMANDS = {
    "py:cache_db": """pylife info --py 'CACHE["db"]' --json""",
    "py:cache_7": "pylife info --py CACHE[7] --json",
    "py:cache_tuple": """pylife info --py 'CACHE[(1, "a")]' --json""",
    "py:cache_none": "pylife info --py CACHE[None] --json",
    "py:cache_bytes": """pylife info --py 'CACHE[b"raw"]' --json""",
    "py:db_name": "pylife info --py conn.name --json",
    "py:db_items_last": "pylife info --py conn.items[-1] --json",
    "py:pair_left_name": "pylife info --py PAIR.left.name --json",
    "py:conn_kind": "pylife info --py conn.kind --json",
    "py:conn_class": "pylife info --py Conn --frame 3 --json",
    "py:len": "pylife info --py len --json",
    "py:marks": "pylife info --py marks --frame 1 --thread {pid} --json",
    "pyerr:property": "pylife info --py conn.upper --json",
    "pyerr:slot_unset": "pylife info --py PAIR.right --json",
    "pyerr:missing_key": """pylife info --py 'CACHE["nope"]' --json""",
    "pyerr:missing_name": "pylife info --py nothing_here --json",
    "pyerr:call": "pylife info --py 'conn.upper()' --json",
    "pyerr:text": "pylife info --py nothing_here",
    "frame:select": "pylife frame 2 --json",
    "frame:names": "pylife info --py names --json",
    "frame:show": "pylife frame --json",
    "frame:text": "pylife frame",
    "frame:reset": "pylife frame 0 --json",
}
HELP_COMMANDS = {
    "help": "help pylife",
    "help_flag": "pylife --help",
    "help_info": "pylife info --help",
}


def cpython_commands() -> list[tuple[str, str]]:
    """Everything asked of a stopped fixture, live or from its core."""
    commands = [(f"info:{name}", f"pylife info {{{name}}} --json") for name in OBJECT_NAMES]
    commands.append(("version", "pylife version --json"))
    commands.append(("info_expression", "pylife info {dict} + 0 --json"))
    commands.extend(HELP_COMMANDS.items())
    commands.extend(ERROR_COMMANDS.items())
    commands.extend(HOSTILE_COMMANDS.items())
    commands.extend(PYEXPR_COMMANDS.items())
    return commands


class DriverFailure(AssertionError):
    """The harness could not get an answer (not a pylife verdict)."""


@dataclass
class Record:
    label: str
    command: str
    output: str
    error: str | None


@dataclass
class Session:
    """The outcome of one debugger process."""

    debugger: str
    mode: str  # live, core, core-without-executable, no-cpython
    argv: list[str]
    returncode: int | None
    transcript: str  # the debugger's stdout and stderr
    records: dict[str, Record]
    truth: dict[str, Any] | None = None
    truth_path: Path | None = None
    core: Path | None = None  # an ELF core written during this (live) session
    minidump: Path | None = None  # lldb's stack-only minidump written during this session
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "debugger": self.debugger, "mode": self.mode, "argv": self.argv, "returncode": self.returncode,
            "transcript": self.transcript, "records": [vars(r) for r in self.records.values()],
            "truth_path": str(self.truth_path) if self.truth_path else None,
            "core": str(self.core) if self.core else None,
            "minidump": str(self.minidump) if self.minidump else None,
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Session:
        truth_path = Path(data["truth_path"]) if data["truth_path"] else None
        return cls(
            data["debugger"], data["mode"], data["argv"], data["returncode"], data["transcript"],
            {r["label"]: Record(**r) for r in data["records"]},
            truth=load_truth(truth_path.read_text()) if truth_path and truth_path.exists() else None,
            truth_path=truth_path,
            core=Path(data["core"]) if data["core"] else None,
            minidump=Path(data["minidump"]) if data["minidump"] else None,
            notes=list(data["notes"]),
        )

    def describe(self) -> str:
        tail = self.transcript[-4000:]
        return f"{self.debugger} {self.mode} session, exit {self.returncode}\nargv: {self.argv}\n--- transcript tail ---\n{tail}"

    def record(self, label: str) -> Record:
        record = self.records.get(label)
        if record is None:
            raise DriverFailure(f"no result for {label!r}\n{self.describe()}")
        if record.error and record.error.startswith("driver:"):
            raise DriverFailure(f"{label!r}: {record.error}\n{self.describe()}")
        return record

    def json(self, label: str) -> dict[str, Any]:
        """The one JSON object a `--json` command printed, as exactly one line."""
        record = self.record(label)
        context = f"{record.command!r} in the {self.debugger} {self.mode} session"
        assert record.error is None, f"{context} failed: {record.error!r} (output {record.output!r})"
        lines = record.output.strip("\n").split("\n")
        assert len(lines) == 1, f"{context}: expected one line, got {len(lines)}: {record.output!r}"
        try:
            data = json.loads(lines[0])
        except ValueError as exc:
            raise AssertionError(f"{context}: not JSON ({exc}): {record.output!r}") from None
        assert isinstance(data, dict), f"{context}: not a JSON object: {record.output!r}"
        return data


def _environment(spec: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PYTEST_"))}
    env["PYLIFE_DRIVE_SPEC"] = str(spec)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _kill_fixture(truth: Path | None) -> None:
    """After a timeout: the fixture process (lldb starts it outside its own process group)."""
    try:
        pid = json.loads(truth.read_text())["python"]["pid"] if truth else None
        if pid:
            os.kill(int(pid), signal.SIGKILL)
    except (OSError, ValueError, KeyError, TypeError):
        pass


def chroot_for(setup: list[str], program: list[str] | None) -> Path | None:
    """The sid root a session runs in: the one of the interpreter it launches, or
    whose core it opens (named in a setup command), or None for this machine's."""
    if program:
        return root_of(program[0])
    for command in setup:
        for word in command.split():
            root = root_of(word)
            if root is not None:
                return root
    return None


def debugger_argv(debugger: str, setup: list[str], program: list[str] | None, root: Path | None = None) -> list[str]:
    """Command line: load pylife, `setup` (launch / open the core), then the driver.

    ``root``: run the root's own debugger by chroot (sid's gdb 18, lldb-21); the
    checkout and /tmp have the same paths inside."""
    prefix = ["chroot", str(root)] if root is not None else []
    if debugger == "gdb":
        argv = [*prefix, "gdb", "-nx", "-batch", "-ex", "set python print-stack full", "-ex", "set confirm off",
                "-ex", f"source {GDB_ENTRY}"]
        for command in setup:
            argv += ["-ex", command]
        argv += ["-ex", f"source {DRIVE_GDB}"]
        return argv + (["--args", *program] if program else [])
    argv = [*prefix, debugger_program("lldb", root), "-b", "--no-lldbinit", "-o", f"command script import {LLDB_ENTRY}"]
    for command in setup:
        argv += ["-o", command]
    argv += ["-o", f"command script import {DRIVE_LLDB}"]
    return argv + (["--", *program] if program else [])


def run_session(
    debugger: str,
    mode: str,
    workdir: Path,
    setup: list[str],
    commands: list[tuple[str, str]],
    program: list[str] | None = None,
    truth: Path | None = None,
    env: dict[str, str] | None = None,
) -> Session:
    """Start one debugger, run ``commands`` at the stop, collect the records.

    ``env`` adds variables for the debugger and the program it launches (after
    the harness removed the caller's PYTHON* variables)."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / f"{debugger}-{mode}-spec.json"
    results_path = workdir / f"{debugger}-{mode}-results.json"
    spec = {"truth": str(truth) if truth else None, "commands": commands, "results": str(results_path)}
    spec_path.write_text(json.dumps(spec))
    argv = debugger_argv(debugger, setup, program, chroot_for(setup, program))
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        cwd=workdir, env={**_environment(spec_path), **(env or {})}, start_new_session=True,
    )
    try:
        raw, _ = process.communicate(timeout=SESSION_TIMEOUT)
        transcript = raw.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the debugger (and what shares its process group)
        raw, _ = process.communicate()
        transcript = raw.decode("utf-8", "replace") + f"\n[harness: killed after {SESSION_TIMEOUT}s]"
        _kill_fixture(truth)
    records: dict[str, Record] = {}
    if results_path.exists():
        for item in json.loads(results_path.read_text()):
            records[item["label"]] = Record(item["label"], item["command"], item["output"], item["error"])
    truth_data = load_truth(truth.read_text()) if truth and truth.exists() else None
    return Session(debugger, mode, argv, process.returncode, transcript, records, truth_data, truth)
