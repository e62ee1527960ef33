"""`pylife diagnose` on a debug build's negative refcount, live and from the core, in gdb and lldb-16.

tests/fixtures/negative_refcount_fixture.py, run by a ``Py_DEBUG`` CPython
(Debian's ``python3.11d``, from the ``python3.11-dbg`` package that
scripts/setup.sh installs), takes a live instance's refcount to -1: CPython
calls ``_Py_NegativeRefcount`` and aborts. The debugger launches it, runs
``pylife diagnose`` and ``pylife version`` at the SIGABRT and, in gdb, writes
a core that both debuggers then diagnose. Without the debug interpreter every
test here is skipped, with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pylife.cpython.layout import PythonVersion, has_debug_table, table_for

from .driver import Session
from .environment import DEBUGGERS, REPO_ROOT
from .once import core_session, live_session, once, shared_root

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "negative_refcount_fixture.py"
DEBUG_PYTHON = Path(os.environ.get("PYLIFE_DEBUG_PYTHON", "/usr/bin/python3.11d"))
MISSING = (f"SKIPPED: no debug-build CPython at {DEBUG_PYTHON} (install Debian's python3.11-dbg: "
           "scripts/setup.sh does; or point PYLIFE_DEBUG_PYTHON at a Py_DEBUG python)")
COMMANDS = [("diagnose", "pylife diagnose --json"), ("diagnose_text", "pylife diagnose"),
            ("version", "pylife version --json")]


def _require(debugger: str) -> str:
    from .environment import debugger_skip_reason

    reason = debugger_skip_reason(debugger)
    if reason:
        pytest.skip(reason)
    if not (DEBUG_PYTHON.is_file() and os.access(DEBUG_PYTHON, os.X_OK)):
        pytest.skip(MISSING)
    return str(DEBUG_PYTHON)


def _make(debugger: str, mode: str, root: Path) -> Session:
    python = _require(debugger)
    if mode == "live":
        def live(workdir: Path) -> Session:
            truth = workdir / "truth.json"
            return live_session(debugger, workdir, COMMANDS, [python, str(FIXTURE), str(truth)], truth,
                                launch_in_driver=True)
        return once(root, f"{debugger}-negative-live", live)
    origin = _make("gdb", "live", root)
    return core_session(root, f"{debugger}-negative-core", debugger, python, origin, COMMANDS)


@pytest.fixture(scope="module")
def negative_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_root(tmp_path_factory, "pylife-negative-refcount")


PARAMS = [pytest.param(debugger, mode, id=f"{debugger}-{mode}", marks=getattr(pytest.mark, debugger))
          for debugger in DEBUGGERS for mode in ("live", "core")]


@pytest.fixture
def session(negative_root: Path, debugger: str, mode: str) -> Session:
    session = _make(debugger, mode, negative_root)
    assert session.truth is not None, f"the fixture wrote no truth\n{session.describe()}"
    assert session.truth["debug"], f"{DEBUG_PYTHON} is no Py_REF_DEBUG build\n{session.describe()}"
    return session


@pytest.mark.parametrize("debugger,mode", PARAMS)
def test_negative_refcount(session: Session) -> None:
    data = session.json("diagnose")
    truth: dict[str, Any] = session.truth  # type: ignore[assignment]
    victim = truth["objects"]["victim"]
    assert data["kind"] == "negative-refcount", data["summary"]
    assert data["signal"] == "SIGABRT", data
    assert data["fatal_error"]["function"] == "_Py_NegativeRefcount", data["fatal_error"]
    assert data["fatal_error"]["message"] == "object has negative ref count", data["fatal_error"]
    native = [f["function"] for f in data["stack"] if f["kind"] == "native"]
    assert "_Py_NegativeRefcount" in native, native
    python = [f["function"] for f in data["stack"] if f["kind"] == "python"]
    assert python[:2] == ["negative", "<module>"], python
    # The object comes from the fatal error's frames (_Py_NegativeRefcount's `op`, or
    # _PyObject_AssertFailed's `obj` when the debug build optimized `op` out).
    found = [o for o in data["objects"] if o["address"] == victim["address"]]
    assert found, f"the victim {victim['address']:#x} is not among {data['objects']}"
    obj = found[0]
    assert obj["type"] == victim["type"] and obj["verdict"] == "CORRUPT", obj
    assert "_Py_NegativeRefcount" in obj["source"], obj
    assert any("refcount -1 is negative" in r for r in obj["reasons"]), obj


@pytest.mark.parametrize("debugger,mode", PARAMS)
def test_negative_refcount_text(session: Session) -> None:
    text = session.record("diagnose_text")
    assert text.error is None, text
    assert text.output.startswith("pylife diagnose: negative-refcount") and "stack:" in text.output


@pytest.mark.parametrize("debugger,mode", PARAMS)
def test_version_says_debug_build(session: Session) -> None:
    data = session.json("version")
    assert data["build"] == "debug", data
    assert (data["major"], data["minor"]) == tuple(int(x) for x in truth_version(session).split(".")[:2]), data
    if has_debug_table(PythonVersion(data["major"], data["minor"], data["micro"], debug=True)):
        assert "debug build" in data["layout_source"] and not data["warnings"], data
    else:
        assert any("release-build table" in w for w in data["warnings"]), data


def truth_version(session: Session) -> str:
    return str(session.truth["python"]) if session.truth else ""


def test_debug_builds_pick_the_debug_table() -> None:
    """No debugger needed: the table choice for Debian's 3.11.2 debug build."""
    _, release = table_for(PythonVersion(3, 11, 2))
    table, debug = table_for(PythonVersion(3, 11, 2, debug=True))
    assert "release build" in release and "debug builds" in debug
    assert table["PyObject.size"] == 16  # no Py_TRACE_REFS: the object header is the release one
    _, other = table_for(PythonVersion(3, 12, 1, debug=True))  # no 3.12 debug table: the release one
    assert "release build" in other
