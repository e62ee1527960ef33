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
from .driver import Session
from .environment import debugger_skip_reason, interpreters


def require(debugger: str, minor: str) -> Path:
    """The interpreter for ``minor``; skips when it or the debugger is missing."""
    reason = debugger_skip_reason(debugger)
    if reason:
        pytest.skip(reason)
    interpreter = interpreters()[minor]
    if interpreter is None:
        pytest.skip(f"CPython {minor} is not installed under pyenv")
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
