"""Colour: only on a terminal the debugger lets colour, never with NO_COLOR, never in JSON."""

from __future__ import annotations

from pylife.commands import execute
from pylife.render.color import wants_color

from .builders import FakePython
from .support import session_of


def test_the_rule() -> None:
    assert wants_color(True, True, {}) is True
    assert wants_color(False, True, {}) is False  # gdb `set style enabled off`, lldb use-color false
    assert wants_color(True, False, {}) is False  # not a terminal
    assert wants_color(True, True, {"NO_COLOR": "1"}) is False
    assert wants_color(False, False, {"PYLIFE_COLOR": "always"}) is True
    assert wants_color(True, True, {"PYLIFE_COLOR": "always", "NO_COLOR": "1"}) is False


def test_colour_reaches_text_not_json(py: FakePython) -> None:
    address = py.value([1, 2])
    coloured = execute(session_of(py), ["info", hex(address)], color=True)
    plain = execute(session_of(py), ["info", hex(address)], color=False)
    assert "\x1b[" in coloured and "\x1b" not in plain
    assert "\x1b" not in execute(session_of(py), ["info", hex(address), "--json"], color=True)
