"""Run an expensive debugger session once per test run, whichever xdist worker asks first.

The same recipe as conftest.Sessions (a file lock in the run's shared
temporary directory, the result saved as JSON), for sessions that are not
the objects fixture's: bt, watch scenarios.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import _locked
from .driver import Session, run_session
from .environment import debugger_skip_reason, interpreters


def require(debugger: str, minor: str) -> Path:
    """The interpreter for ``minor``; skips when it or the debugger is missing."""
    reason = debugger_skip_reason(debugger, minor)
    if reason:
        pytest.skip(reason)
    interpreter = interpreters()[minor]
    if interpreter is None:
        pytest.skip(f"CPython {minor} is not installed (pyenv, or the sid root)")
    return Path(interpreter.path)


def shared_root(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by every worker of this run
    root = base / name
    root.mkdir(exist_ok=True)
    return root


def once(root: Path, key: str, make: Callable[[Path], Session]) -> Session:
    """The session for ``key``, made by ``make(workdir)`` the first time; skips propagate."""
    workdir = root / key
    workdir.mkdir(parents=True, exist_ok=True)
    saved = workdir / "session.json"
    with _locked(workdir / "lock"):
        if not saved.exists():
            try:
                outcome = {"session": make(workdir).to_json()}
            except pytest.skip.Exception as exc:
                outcome = {"skip": str(exc.msg)}
            saved.write_text(json.dumps(outcome))
        outcome = json.loads(saved.read_text())
    if "skip" in outcome:
        pytest.skip(outcome["skip"])
    return Session.from_json(outcome["session"])


def launch_command(debugger: str) -> str:
    return "run" if debugger == "gdb" else "process launch"


def live_session(debugger: str, workdir: Path, commands: list[tuple[str, str]], program: list[str], truth: Path,
                 setup: list[str] | None = None, env: dict[str, str] | None = None,
                 launch_in_driver: bool = False) -> Session:
    """Launch ``program`` to its stop, run ``commands``, and (gdb) write a core there.

    ``launch_in_driver``: launch from the driver's first command; lldb-16 -b
    runs no further -o command after a crash stop. lldb-16 cannot write ELF
    cores, so cores always come from gdb's gcore (see conftest)."""
    core = workdir / "stop.core"
    launch = [("launch", launch_command(debugger))] if launch_in_driver else []
    save = [("save_core", f"gcore {core}")] if debugger == "gdb" else []
    setup = list(setup or []) + ([] if launch_in_driver else [launch_command(debugger)])
    session = run_session(debugger, "live", workdir, setup, [*launch, *commands, *save], program=program, truth=truth,
                          env=env)
    if core.exists() and core.stat().st_size > 0:
        session.core = core
    return session


def core_session(root: Path, key: str, debugger: str, python: str, origin: Session,
                 commands: list[tuple[str, str]]) -> Session:
    """The same ``commands`` on the core gdb wrote during ``origin`` (a live gdb session)."""
    def make(workdir: Path) -> Session:
        if origin.core is None or origin.truth_path is None:
            pytest.skip(f"gdb wrote no core for {key}")
        setup = ([f"file {python}", f"core-file {origin.core}"] if debugger == "gdb"
                 else [f"target create --core {origin.core} {python}"])
        return run_session(debugger, "core", workdir, setup, list(commands), truth=origin.truth_path)
    return once(root, key, make)


def malloc_debug_setup(debugger: str) -> list[str]:
    """Run the inferior (not the debugger's own Python) with PYTHONMALLOC=debug."""
    return ["set environment PYTHONMALLOC debug"] if debugger == "gdb" else ["settings set target.env-vars PYTHONMALLOC=debug"]


def live_then_core_session(debugger: str, workdir: Path, commands: list[tuple[str, str]], program: list[str],
                           truth: Path, core: Path, setup: list[str] | None = None,
                           env: dict[str, str] | None = None) -> Session:
    """One debugger process: launch ``program`` to its crash, run ``commands`` (labels
    prefixed ``live:``), then open ``core`` and run them again (``core:``).

    gdb writes ``core`` at the stop (gcore) before it opens it; lldb-16 cannot
    write ELF cores, so it opens the one a gdb session wrote before."""
    python = program[0]
    steps = [("launch", launch_command(debugger)), *((f"live:{label}", c) for label, c in commands)]
    if debugger == "gdb":
        steps += [("save_core", f"gcore {core}"), ("kill", "kill"), ("open_core", f"core-file {core}")]
    else:
        steps += [("kill", "process kill"), ("open_core", f"target create --core {core} {python}")]
    steps += [(f"core:{label}", c) for label, c in commands]
    session = run_session(debugger, "live+core", workdir, list(setup or []), steps, program=program, truth=truth,
                          env=env)
    if core.exists() and core.stat().st_size > 0:
        session.core = core
    return session
