"""A free-threaded CPython (3.13t, 3.14t, 3.15t) in real gdb and lldb-16, when one exists.

Looked for under pyenv (``3.13.0t``...), on PATH (``python3.14t``) and in the
Debian sid root of scripts/make_sid_root.sh. None exists on the machines this
was written on (pyenv has no t build, sid ships no python3.14-nogil), so the
tests are skipped, loudly, and the free-threaded model is covered by
tests/unit/test_free_threaded.py on fake images.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .driver import Session, run_session
from .environment import DEBUGGERS, FIXTURE, debugger_skip_reason, free_threaded_interpreters
from .once import once, shared_root

SID_ROOT = Path(os.environ.get("PYLIFE_SID_ROOT", "/var/cache/pylife/sid-root"))
OBJECTS = ("str_ascii", "float", "tuple", "list", "dict", "bytes")


def _interpreter() -> Path:
    found = free_threaded_interpreters()
    if not found:
        in_root = sorted(SID_ROOT.glob("usr/bin/python3.1[3-9]t")) if SID_ROOT.is_dir() else []
        detail = f"; the sid root has {in_root[0]} but runs only chrooted" if in_root else ""
        pytest.skip("NO FREE-THREADED CPython on this machine (pyenv 3.1Xt, python3.1Xt on PATH): the free-threaded "
                    f"layouts are checked on fake images only (tests/unit/test_free_threaded.py){detail}")
    return found[0]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_root(tmp_path_factory, "pylife-free-threaded")


def _session(root: Path, debugger: str) -> Session:
    python = _interpreter()

    def make(workdir: Path) -> Session:
        reason = debugger_skip_reason(debugger)
        if reason:
            pytest.skip(reason)
        truth = workdir / "truth.json"
        setup = ["run"] if debugger == "gdb" else ["process launch"]
        commands = [("version", "pylife version --json")]
        commands += [(f"info:{name}", f"pylife info {{{name}}} --json") for name in OBJECTS]
        return run_session(debugger, "live", workdir, setup, commands, program=[str(python), str(FIXTURE), str(truth)],
                           truth=truth)
    return once(root, f"{debugger}-{python.name}", make)


@pytest.mark.parametrize("debugger", [pytest.param(d, marks=getattr(pytest.mark, d)) for d in DEBUGGERS])
def test_free_threaded_interpreter(root: Path, debugger: str) -> None:
    session = _session(root, debugger)
    truth = session.truth
    assert truth is not None, session.describe()
    assert session.json("version")["threading"] == "free-threaded"
    for name in OBJECTS:
        data = session.json(f"info:{name}")
        assert data["type"] == truth["objects"][name]["type"], data
        assert data["verdict"] in ("ALIVE", "UNKNOWN"), data  # never a wrong FREED
