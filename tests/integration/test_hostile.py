"""Hostile target text in real gdb and lldb-16 sessions: class names that hold controls,
C1, a bidi override, or run past 256 bytes are still live objects, shown escaped and cut."""

from __future__ import annotations

import pytest

from . import params
from .conftest import Sessions
from .driver import Session

BIDI = {chr(c) for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def _raw(char: str) -> bool:
    """A character that must never reach a terminal from the target (pylife's own SGR aside)."""
    code = ord(char)
    return (code < 0x20 and char != "\n") or 0x7F <= code < 0xA0 or char in BIDI


@pytest.fixture
def session(sessions: Sessions, debugger: str, minor: str, mode: str) -> Session:
    return sessions.get(debugger, minor, mode)


@pytest.mark.parametrize("name", ["odd_name_instance", "long_name_instance"])
@pytest.mark.parametrize(params.SESSION_ARGS, params.sessions())
def test_odd_class_names_are_shown_escaped_and_cut(session: Session, name: str) -> None:
    assert session.truth is not None
    truth = session.truth["objects"][name]
    data = session.json(f"info:{name}")
    assert data["type"] == truth["type"] and data["verdict"] == "ALIVE", data
    record = session.record(f"text:{name}")
    assert record.error is None, record.error
    text = record.output
    assert not any(_raw(c) for c in text.replace("\x1b[1m", "").replace("\x1b[0m", "")), repr(text)
    type_line = next(line for line in text.splitlines() if line.startswith("type"))
    assert len(type_line) < 200, type_line
    if name == "odd_name_instance":
        assert "Evil\\x1b[2J\\x07\\x0d\\x7f\\x9b\\u202egpj.exe" in type_line
    else:
        assert "L" * 100 in type_line and "…" in type_line


@pytest.mark.parametrize(params.SESSION_ARGS, params.sessions())
def test_zero_bytes_inside_a_live_object_are_not_a_dead_float(session: Session) -> None:
    """Refcount 0 and ob_type NULL inside a live bytes payload: an interior pointer, not FREED."""
    data = session.json("interior_zeros_json")
    assert data.get("verdict") != "FREED" and not data.get("stale_type"), data
    assert "an interior pointer" in data.get("error", ""), data
