"""Debugger sessions shared by every integration test.

One debugger process per (debugger, interpreter, mode) runs all the commands
at once; tests only look up its records. Under pytest-xdist each worker is a
separate process, so a finished session is saved as JSON in the run's shared
temporary directory, under a file lock: whichever worker needs it first runs
it, the other one waits and reads it (the usual xdist recipe for "run a
session fixture once"). Nothing depends on how tests are spread over workers.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .driver import Session, cpython_commands, run_session
from .environment import FIXTURE, debugger_skip_reason, interpreters

# lldb-16 on Linux cannot write an ELF core: `process save-core` has no ELF
# writer ("no ObjectFile plugins were able to save a core"), and its minidump
# writer only does `--style stack`, without the heap. lldb is still asked
# first (a newer lldb may manage); the core gdb's `gcore` wrote is the
# fallback. The stack-only minidump is kept to check that pylife fails cleanly
# on a core that lacks the heap.
LLDB_SAVE_CORE = "process save-core --style full {path}"
LLDB_SAVE_MINIDUMP = "process save-core --plugin-name=minidump --style stack {path}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Sessions:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[tuple[str, str, str], Session | str] = {}  # a session, or why it was skipped

    def get(self, debugger: str, minor: str, mode: str) -> Session:
        """The session, run once per test run (skips the test when it cannot run)."""
        key = (debugger, minor, mode)
        if key not in self.cache:
            workdir = self.root / "-".join(key)
            workdir.mkdir(parents=True, exist_ok=True)
            saved = workdir / "session.json"
            with _locked(workdir / "lock"):
                if saved.exists():
                    outcome = json.loads(saved.read_text())
                else:
                    try:
                        outcome = {"session": self._make(debugger, minor, mode, workdir).to_json()}
                    except pytest.skip.Exception as exc:
                        outcome = {"skip": str(exc.msg)}
                    saved.write_text(json.dumps(outcome))
            self.cache[key] = Session.from_json(outcome["session"]) if "session" in outcome else outcome["skip"]
        cached = self.cache[key]
        if isinstance(cached, str):
            pytest.skip(cached)
        return cached

    def _make(self, debugger: str, minor: str, mode: str, workdir: Path) -> Session:
        reason = debugger_skip_reason(debugger, minor)
        if reason:
            pytest.skip(reason)
        if mode == "no-cpython":
            return self._no_cpython(debugger, workdir)
        interpreter = interpreters()[minor]
        if interpreter is None:
            pytest.skip(f"CPython {minor} is not installed (pyenv, or the sid root)")
        python = str(interpreter.path)
        if mode == "live":
            return self._live(debugger, python, workdir)
        if mode == "minidump":
            return self._minidump(minor, python, workdir)
        core, truth, origin = self._core_for(debugger, minor)
        if mode == "core":
            session = run_session(debugger, mode, workdir, self._open_core(debugger, core, python),
                                  cpython_commands(), truth=truth)
        elif mode == "core-without-executable":
            commands = [("version", "pylife version --json"), ("version_text", "pylife version"),
                        ("info_json", "pylife info {dict} --json"), ("info_text", "pylife info {dict}")]
            session = run_session(debugger, mode, workdir, self._open_core(debugger, core, None), commands,
                                  truth=truth)
        else:
            raise ValueError(mode)
        session.notes.append(f"core written by {origin}: {core}")
        return session

    def _live(self, debugger: str, python: str, workdir: Path) -> Session:
        truth = workdir / "truth.json"
        core = workdir / "fixture.core"
        minidump = workdir / "fixture.dmp"
        commands = cpython_commands()
        if debugger == "gdb":
            setup = ["run"]
            commands.append(("save_core", f"gcore {core}"))
        else:
            setup = ["process launch"]
            commands.append(("save_core", LLDB_SAVE_CORE.format(path=core)))
            commands.append(("save_minidump", LLDB_SAVE_MINIDUMP.format(path=minidump)))
        session = run_session(debugger, "live", workdir, setup, commands,
                              program=[python, str(FIXTURE), str(truth)], truth=truth)
        if core.exists() and core.stat().st_size > 0:
            session.core = core
        if minidump.exists() and minidump.stat().st_size > 0:
            session.minidump = minidump
        return session

    def _core_for(self, debugger: str, minor: str) -> tuple[Path, Path, str]:
        """(core, truth of the process it was taken from, who wrote it)."""
        for writer in dict.fromkeys((debugger, "gdb")):
            if debugger_skip_reason(writer, minor):
                continue
            live = self.get(writer, minor, "live")
            if live.core is not None and live.truth_path is not None:
                return live.core, live.truth_path, writer
        pytest.skip(f"no core for {minor}: neither {debugger} nor gdb could write one")

    def _minidump(self, minor: str, python: str, workdir: Path) -> Session:
        live = self.get("lldb", minor, "live")
        if live.minidump is None:
            pytest.skip(f"lldb wrote no minidump for {minor}")
        commands = [("version", "pylife version --json"), ("info_json", "pylife info {dict} --json"),
                    ("info_text", "pylife info {dict}")]
        return run_session("lldb", "minidump", workdir, self._open_core("lldb", live.minidump, python), commands,
                           truth=live.truth_path)

    @staticmethod
    def _open_core(debugger: str, core: Path, python: str | None) -> list[str]:
        if debugger == "gdb":
            return ([f"file {python}"] if python else []) + [f"core-file {core}"]
        if python:
            return [f"target create --core {core} {python}"]
        return [f"target create --core {core}"]

    @staticmethod
    def _no_cpython(debugger: str, workdir: Path) -> Session:
        setup = ["starti"] if debugger == "gdb" else ["process launch --stop-at-entry"]
        commands = [("version", "pylife version --json"), ("version_text", "pylife version"),
                    ("info_json", "pylife info 0x1000 --json"), ("info_text", "pylife info 0x1000")]
        return run_session(debugger, "no-cpython", workdir, setup, commands, program=["/bin/sleep", "5"])


@pytest.fixture(scope="session")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Sessions:
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by every worker of this run
    root = base / "pylife-sessions"
    root.mkdir(exist_ok=True)
    return Sessions(root)
