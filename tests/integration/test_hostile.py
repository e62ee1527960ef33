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


# ---- C expressions in both debuggers, at a breakpoint in the buggy extension's leak(obj) ----------

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from .environment import DEBUGGERS, REPO_ROOT  # noqa: E402
from .once import live_session, once, require, shared_root  # noqa: E402

BUGGY = REPO_ROOT / "tests" / "fixtures" / "buggy"
sys.path.insert(0, str(BUGGY))
from build import build  # noqa: E402

BREAK = {"gdb": [("break", "break buggy_leak"), ("continue", "continue")],
         "lldb": [("break", "breakpoint set -n buggy_leak"), ("continue", "process continue")]}
EXPRESSIONS = {
    "local": "obj",
    "register": "$rsi",  # METH_O: (self, obj)
    "stack": "*(PyObject**)$rsp",  # -O0 spills obj at the bottom of buggy_leak's frame
    "cast": "(PyObject *)$rsi",
    "cast_of_cast": "(PyObject *)(unsigned long)obj",
    "parenthesised": "((((obj))))",
    "member": "obj->ob_type",
    "cast_member": "((PyObject *)obj)->ob_type",
}
HOSTILE_EXPRESSIONS = {
    "deep_parens": "(" * 1200 + "obj" + ")" * 1200,
    "spaces": "(unsigned long" + " " * 1600 + "obj",
}


def _expression_session(root: Path, debugger: str, minor: str) -> Session:
    python = require(debugger, minor)

    def make(workdir: Path) -> Session:
        ext = build(python, root / "build")
        out = workdir / "scenario.jsonl"
        commands = list(BREAK[debugger])
        if debugger == "lldb" and minor == "3.12":
            # lldb-16 stops in the inlined Py_INCREF(op) at buggy_leak's first line (gdb
            # hides such frames): select buggy_leak itself, where `obj` is in scope.
            commands.append(("select", "frame select 1"))
        commands += [(f"expr:{label}", f"pylife info '{text}' --json") for label, text in EXPRESSIONS.items()]
        commands += [(f"hostile:{label}", f"pylife info '{text}' --json") for label, text in HOSTILE_EXPRESSIONS.items()]
        commands += [("call_refused", "pylife info '(PyObject *)PyLong_FromLong(5)' --json"),
                     ("call_allowed", "pylife info '(PyObject *)PyLong_FromLong(5)' --allow-call --json")]
        env = {"PYTHONPATH": str(ext), "PYLIFE_SCENARIO_OUT": str(out), "PYLIFE_LOG_DIR": str(workdir)}
        return live_session(debugger, workdir, commands,
                            [str(python), str(BUGGY / "scenarios.py"), "leak", "--stop", "--n", "1"], out, env=env)

    return once(root, f"expr-{debugger}-{minor}", make)


@pytest.fixture(scope="module")
def expression_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_root(tmp_path_factory, "pylife-expressions")


EXPRESSION_PARAMS = [pytest.param(d, m, id=f"{d}-{m}", marks=getattr(pytest.mark, d))
                     for d in DEBUGGERS for m in ("3.8", "3.12")]


@pytest.mark.parametrize(("debugger", "minor"), EXPRESSION_PARAMS)
def test_c_expressions_of_the_readme(expression_root: Path, debugger: str, minor: str) -> None:
    session = _expression_session(expression_root, debugger, minor)
    assert session.truth is not None, session.describe()
    victim = session.truth["victim"]
    for label in ("local", "register", "stack", "cast", "cast_of_cast", "parenthesised"):
        data = session.json(f"expr:{label}")
        assert data.get("address") == victim and data.get("type") == "__main__.Victim", (label, data)
    for label in ("member", "cast_member"):
        data = session.json(f"expr:{label}")
        assert data.get("preview") == "<class '__main__.Victim'>", (label, data)


@pytest.mark.parametrize(("debugger", "minor"), EXPRESSION_PARAMS)
def test_hostile_expressions_get_one_line(expression_root: Path, debugger: str, minor: str) -> None:
    session = _expression_session(expression_root, debugger, minor)
    for label in HOSTILE_EXPRESSIONS:
        data = session.json(f"hostile:{label}")  # one line of JSON: a result or {"error": ...}
        assert "Traceback" not in session.record(f"hostile:{label}").output, data
        if "error" in data:
            assert "RecursionError" not in data["error"] and "internal error" not in data["error"], data


@pytest.mark.parametrize(("debugger", "minor"), EXPRESSION_PARAMS)
def test_a_function_call_is_refused_unless_allowed(expression_root: Path, debugger: str, minor: str) -> None:
    """gdb would run PyLong_FromLong in the program (set may-call-functions off refuses it);
    lldb's evaluator runs without JIT. --allow-call lifts both."""
    session = _expression_session(expression_root, debugger, minor)
    refused = session.json("call_refused")
    assert set(refused) == {"error"} and "--allow-call" in refused["error"], refused
    allowed = session.json("call_allowed")
    assert allowed.get("type") == "int" and allowed.get("preview") == "5", allowed
