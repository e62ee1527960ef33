"""`pylife version`, help, and the error paths: one line, never a Python traceback."""

from __future__ import annotations

import os

import pytest

from . import params
from .conftest import Sessions
from .driver import ERROR_COMMANDS, Record, Session
from .environment import DEBUGGERS, MINORS

TRACEBACK_MARKERS = ("Traceback", "Python Exception", "Error occurred in Python")


@pytest.fixture
def session(sessions: Sessions, debugger: str, minor: str, mode: str) -> Session:
    return sessions.get(debugger, minor, mode)


def assert_no_traceback(session: Session) -> None:
    for marker in TRACEBACK_MARKERS:
        assert marker not in session.transcript, f"{marker!r} in the debugger output\n{session.describe()}"
    for record in session.records.values():
        for text in (record.output, record.error or ""):
            for marker in TRACEBACK_MARKERS:
                assert marker not in text, f"{marker!r} in the answer to {record.command!r}: {text!r}"


def assert_json_error(session: Session, label: str) -> str:
    data = session.json(label)
    assert list(data) == ["error"], f"{label}: expected only an error, got {data}"
    message = data["error"]
    assert isinstance(message, str) and message.strip(), f"{label}: empty error {data}"
    assert "\n" not in message
    return message


def assert_one_line_error(record: Record) -> str:
    assert record.error is not None, f"{record.command!r} did not fail: output {record.output!r}"
    lines = [line for line in record.error.strip().split("\n") if line.strip()]
    assert len(lines) == 1, f"{record.command!r}: error is not one line: {record.error!r}"
    assert not record.output.strip(), f"{record.command!r}: output besides the error: {record.output!r}"
    return lines[0]


def realpath(path: str | None) -> str | None:
    return os.path.realpath(path) if path else None


# ---- version ------------------------------------------------------------------


@pytest.mark.parametrize(params.SESSION_ARGS, params.sessions())
def test_version(session: Session, debugger: str, minor: str, mode: str) -> None:
    assert session.truth is not None, session.describe()
    python = session.truth["python"]
    data = session.json("version")
    assert data.get("version") == python["version"]
    assert data.get("build") == ("debug" if minor.endswith("d") else "release")  # sid's python3.14d/3.15d
    assert data.get("threading") == "GIL"
    assert realpath(data.get("libpython")) == realpath(python["libpython"])
    assert realpath(data.get("executable")) == realpath(python["executable"])
    assert data.get("target") == mode
    assert data.get("debugger") == debugger


# ---- help -------------------------------------------------------------------------


@pytest.mark.parametrize(params.SESSION_ARGS, params.sessions())
def test_help(session: Session) -> None:
    text = session.record("help").output + (session.record("help").error or "")
    assert "usage: pylife" in text and "info" in text and "version" in text, f"`help pylife`: {text!r}"
    flag = session.record("help_flag")
    assert flag.error is None and "usage: pylife" in flag.output, flag
    info = session.record("help_info")
    assert info.error is None and "usage: pylife info" in info.output and "--json" in info.output, info


# ---- errors -----------------------------------------------------------------------


@pytest.mark.parametrize("label", [label for label in ERROR_COMMANDS if label.endswith("_json")])
@pytest.mark.parametrize(params.SESSION_ARGS, params.sessions())
def test_error_json(session: Session, label: str) -> None:
    assert_json_error(session, label)


@pytest.mark.parametrize("label", [label for label in ERROR_COMMANDS if not label.endswith("_json")])
@pytest.mark.parametrize(params.SESSION_ARGS, params.sessions())
def test_error_text(session: Session, label: str) -> None:
    assert_one_line_error(session.record(label))


@pytest.mark.parametrize(params.SESSION_ARGS, params.sessions())
def test_not_an_object_is_named(session: Session) -> None:
    assert "not a PyObject" in assert_json_error(session, "err_not_object_json")


@pytest.mark.parametrize(params.SESSION_ARGS, params.sessions())
def test_no_traceback(session: Session) -> None:
    assert session.records, f"the driver ran no command\n{session.describe()}"
    assert_no_traceback(session)


# ---- targets pylife cannot read ---------------------------------------------------

DEBUGGER_PARAMS = [pytest.param(d, id=d, marks=getattr(pytest.mark, d)) for d in DEBUGGERS]


@pytest.mark.parametrize("debugger", DEBUGGER_PARAMS)
def test_process_without_cpython(sessions: Sessions, debugger: str) -> None:
    session = sessions.get(debugger, "none", "no-cpython")
    assert "CPython" in assert_json_error(session, "version")
    assert_json_error(session, "info_json")
    assert_one_line_error(session.record("version_text"))
    assert_one_line_error(session.record("info_text"))
    assert_no_traceback(session)


@pytest.mark.parametrize("minor", MINORS)
@pytest.mark.parametrize("debugger", DEBUGGER_PARAMS)
def test_core_without_executable(sessions: Sessions, debugger: str, minor: str) -> None:
    """Either a clean one-line error, or (when the debugger finds the binaries) the right answer."""
    session = sessions.get(debugger, minor, "core-without-executable")
    assert session.truth is not None, session.describe()
    version = session.json("version")
    if "error" in version:
        assert_json_error(session, "version")
        assert_json_error(session, "info_json")
        assert_one_line_error(session.record("version_text"))
        assert_one_line_error(session.record("info_text"))
    else:
        assert version.get("version") == session.truth["python"]["version"]
        assert session.json("info_json").get("address") == session.truth["objects"]["dict"]["address"]
    assert_no_traceback(session)


@pytest.mark.lldb
@pytest.mark.parametrize("minor", MINORS)
def test_core_without_heap(sessions: Sessions, minor: str) -> None:
    """lldb-16's stack-only minidump: the version is found, objects fail with one line (or are right)."""
    session = sessions.get("lldb", minor, "minidump")
    assert session.truth is not None, session.describe()
    # 3.8-3.10 keep the micro version only in sys.version, on the heap: "3.X.?" is right then.
    assert session.json("version").get("version") in (session.truth["python"]["version"], f"{minor}.?")
    info = session.json("info_json")
    if "error" in info:
        assert_json_error(session, "info_json")
        assert_one_line_error(session.record("info_text"))
    else:
        assert info.get("address") == session.truth["objects"]["dict"]["address"]
    assert_no_traceback(session)


# ---- the fixture's own arithmetic -----------------------------------------------


@pytest.mark.parametrize("minor", MINORS)
def test_fixture_preheader_matches_getsizeof(sessions: Sessions, minor: str) -> None:
    """The flag-derived pre-header equals sys.getsizeof() - __sizeof__() (_PyType_PreHeaderSize).

    Exception: on 3.11 and 3.12 sys.getsizeof() of a *static* type object adds
    a GC head the object does not have (fixed in 3.13); the truth uses 0 there.
    """
    truth = None
    for debugger in DEBUGGERS:
        try:
            truth = sessions.get(debugger, minor, "live").truth
        except pytest.skip.Exception:
            continue
        if truth:
            break
    if truth is None:
        pytest.skip(f"no live session for {minor}")
    mismatched = {}
    for name, obj in truth["objects"].items():
        if obj["preheader"] != obj["preheader_getsizeof"]:
            mismatched[name] = (obj["preheader"], obj["preheader_getsizeof"], obj["static_type"])
    if minor in ("3.11", "3.12"):
        assert mismatched == {"type_int": (0, 16, True)}
    else:
        assert mismatched == {}
