"""The shared `pylife` command line: help, errors as one line, --json as one line."""

from __future__ import annotations

import json

import pytest

from pylife.commands import VERBS, CommandFailed, execute, help_text

from .builders import FakePython
from .support import INFO_KEYS, run_json, session_of


@pytest.fixture
def py312() -> FakePython:
    return FakePython((3, 12))


def _fails(py: FakePython, argv: list[str]) -> str:
    with pytest.raises(CommandFailed) as caught:
        execute(session_of(py), argv)
    message = str(caught.value)
    assert message.startswith("pylife") and "\n" not in message and message.strip() == message
    return message


def test_top_level_help(py312: FakePython) -> None:
    for argv in (["--help"], ["-h"], []):
        text = execute(session_of(py312), argv)
        assert text.startswith("usage: pylife"), argv
        for verb in VERBS:
            assert verb in text
    assert "usage: pylife" in help_text()


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_verb_help(py312: FakePython, verb: str) -> None:
    text = execute(session_of(py312), [verb, "--help"])
    assert text.startswith(f"usage: pylife {verb}") and "--json" in text


def test_info_help_lists_budgets(py312: FakePython) -> None:
    text = execute(session_of(py312), ["info", "--help"])
    for option in ("--depth", "--items", "--chars", "ADDR"):
        assert option in text


@pytest.mark.parametrize("argv", [
    ["bogus"], ["info"], ["info", "--bogus", "0x1000"], ["info", "0x1000", "--depth", "abc"], ["version", "extra"],
    ["--nope"],
])
def test_usage_errors_are_one_line(py312: FakePython, argv: list[str]) -> None:
    message = _fails(py312, argv)
    assert "--help" in message


def test_usage_error_with_json_is_one_json_line(py312: FakePython) -> None:
    output = execute(session_of(py312), ["bogus", "--json"])
    assert output.count("\n") == 1 and set(json.loads(output)) == {"error"}


def test_version_json_is_one_line(py312: FakePython) -> None:
    data = run_json(py312, ["version"])
    assert {"version", "major", "minor", "micro", "libpython", "layout_source", "target", "debugger",
            "pylife"} <= set(data)


def test_version_text(py312: FakePython) -> None:
    text = execute(session_of(py312), ["version"])
    assert "CPython" in text and "3.12.1" in text and text.endswith("\n")


def test_info_text_and_json_agree(py312: FakePython) -> None:
    address = py312.value({"k": [1, 2.5, None]})
    data = run_json(py312, ["info", hex(address)])
    assert set(data) == INFO_KEYS
    assert data["address"] == address and data["type"] == "dict" and data["preview"] == "{'k': [1, 2.5, None]}"
    text = execute(session_of(py312), ["info", hex(address)])
    assert text.startswith(f"PyObject at {address:#x}\n")
    assert "{'k': [1, 2.5, None]}" in text and "tracked, generation 0" in text


def test_info_budget_options(py312: FakePython) -> None:
    address = py312.value([list(range(5)), "x" * 50])
    data = run_json(py312, ["info", hex(address), "--items", "2", "--chars", "3", "--depth", "1"])
    assert data["preview"] == "[[...], 'xxx'...]"
    data = run_json(py312, ["info", hex(address), "--items", "-5", "--depth", "-1"])
    assert data["preview"] == "[...]"


def test_info_accepts_decimal_and_symbols(py312: FakePython) -> None:
    address = py312.value((1,))
    assert run_json(py312, ["info", str(address)])["preview"] == "(1,)"
    py312.t.symbols["my_tuple"] = address
    assert run_json(py312, ["info", "my_tuple"])["preview"] == "(1,)"
    assert "cannot evaluate" in _fails(py312, ["info", "no_such_symbol"])
    assert "64-bit" in _fails(py312, ["info", "0x1" + "0" * 17])


def test_color_only_styles_the_heading(py312: FakePython) -> None:
    address = py312.value("\x1b[31m")
    text = execute(session_of(py312), ["info", hex(address)], color=True)
    assert text.startswith("\x1b[1m") and text.count("\x1b") == 2
