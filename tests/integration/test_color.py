"""Colour on real gdb and lldb-16 output: forced on (PYLIFE_COLOR=always, as a terminal
would have it), off with NO_COLOR, off when not a terminal (the driver's pipe), never in JSON.
Python source lines in `pylife bt` are highlighted by pygments when colour is on."""

from __future__ import annotations

from pathlib import Path

import pytest

from .driver import Session, run_session
from .environment import DEBUGGERS, FIXTURE
from .once import once, require, shared_root

COMMANDS = [("bt", "pylife bt"), ("info", "pylife info {list}"), ("info_json", "pylife info {list} --json")]
ENVIRONMENTS = {"forced": {"PYLIFE_COLOR": "always"}, "no_color": {"PYLIFE_COLOR": "always", "NO_COLOR": "1"},
                "pipe": {}}


def _session(root: Path, debugger: str, setting: str) -> Session:
    python = require(debugger, "3.12")

    def make(workdir: Path) -> Session:
        truth = workdir / "truth.json"
        setup = ["run"] if debugger == "gdb" else ["process launch"]
        return run_session(debugger, "live", workdir, setup, COMMANDS, program=[str(python), str(FIXTURE), str(truth)],
                           truth=truth, env=ENVIRONMENTS[setting])

    return once(root, f"color-{debugger}-{setting}", make)


@pytest.fixture(scope="module")
def color_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_root(tmp_path_factory, "pylife-color")


@pytest.mark.parametrize("setting", list(ENVIRONMENTS))
@pytest.mark.parametrize("debugger", [pytest.param(d, marks=getattr(pytest.mark, d)) for d in DEBUGGERS])
def test_colour(color_root: Path, debugger: str, setting: str) -> None:
    session = _session(color_root, debugger, setting)
    bt = session.record("bt").output
    info = session.record("info").output
    assert "\x1b" not in session.record("info_json").output
    if setting == "forced":
        assert info.startswith("\x1b[1mPyObject at"), repr(info[:40])
        python_source = [line for line in bt.splitlines() if line.startswith("         ") and "\x1b[" in line]
        assert python_source, bt  # a source line highlighted by pygments
    else:
        assert "\x1b" not in bt and "\x1b" not in info, (bt, info)
