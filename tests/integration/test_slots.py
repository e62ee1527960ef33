"""Hardware slot accounting in real gdb and lldb-16: a watchpoint the user set by hand
takes a debug register, so pylife counts it and refuses the watch that would not fit,
at once (not at the next `continue`); an immortal object (3.12+) is refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from .driver import Session, run_session
from .environment import DEBUGGERS, FIXTURE
from .once import once, require, shared_root

MINORS = ("3.8", "3.12")
BY_HAND = {"gdb": "watch -l *(long *){dict}", "lldb": "watchpoint set expression -w write -s 8 -- {dict}"}
# A hardware breakpoint takes a debug register too (on a function this program never calls).
HBREAK = {"gdb": "hbreak PyOS_AfterFork_Child", "lldb": "breakpoint set -H -n PyOS_AfterFork_Child"}
COMMANDS = [
    ("immortal", "pylife watch {none} --json"),
    ("watch1", "pylife watch {list} --json"),
    ("watch2", "pylife watch {tuple} --json"),
    ("watch3", "pylife watch {set} --json"),
    ("watch4", "pylife watch {frozenset} --json"),
    ("watches", "pylife watches --json"),
    ("unwatch", "pylife unwatch {list} --json"),
    ("watch4_again", "pylife watch {frozenset} --json"),
    ("unwatch_all", "pylife unwatch --all --json"),
]
AFTER_HBREAK = [("watches_hbreak", "pylife watches --json"), ("watch_hbreak", "pylife watch {list} --json")]


def _session(root: Path, debugger: str, minor: str) -> Session:
    python = require(debugger, minor)

    def make(workdir: Path) -> Session:
        truth = workdir / "truth.json"
        setup = ["run"] if debugger == "gdb" else ["process launch"]
        commands = [("by_hand", BY_HAND[debugger]), *COMMANDS, ("hbreak", HBREAK[debugger]), *AFTER_HBREAK]
        return run_session(debugger, "live", workdir, setup, commands,
                           program=[str(python), str(FIXTURE), str(truth)], truth=truth,
                           env={"PYLIFE_LOG_DIR": str(workdir)})

    return once(root, f"slots-{debugger}-{minor}", make)


@pytest.fixture(scope="module")
def slots_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_root(tmp_path_factory, "pylife-slots")


def _immortal(minor: str) -> bool:
    return tuple(int(p) for p in minor.split(".")) >= (3, 12)


PARAMS = [pytest.param(d, m, id=f"{d}-{m}", marks=getattr(pytest.mark, d)) for d in DEBUGGERS for m in MINORS]


@pytest.mark.parametrize(("debugger", "minor"), PARAMS)
def test_a_watchpoint_set_by_hand_is_counted(slots_root: Path, debugger: str, minor: str) -> None:
    session = _session(slots_root, debugger, minor)
    assert session.record("by_hand").error is None, session.describe()
    taken = 1 + (0 if _immortal(minor) else 1)  # by hand; None is watched before 3.12
    for number in range(1, 5 - taken):
        data = session.json(f"watch{number}")
        assert data.get("slots_used") == number + taken and data.get("slots_total") == 4, data
    refused = session.json(f"watch{5 - taken}")
    assert set(refused) == {"error"} and "by hand" in refused["error"], refused
    assert session.json("watches")["slots_used"] == 4
    assert len(session.json("watches")["watches"]) == 4 - 1
    assert session.json("unwatch")["slots_used"] == 3
    if _immortal(minor):
        assert session.json("watch4_again")["slots_used"] == 4
    assert session.json("unwatch_all")["slots_used"] == 1  # the watchpoint set by hand


@pytest.mark.parametrize(("debugger", "minor"), PARAMS)
def test_a_hardware_breakpoint_set_by_hand_is_counted(slots_root: Path, debugger: str, minor: str) -> None:
    session = _session(slots_root, debugger, minor)
    assert session.record("hbreak").error is None, session.describe()
    # lldb-16's lldb-server may refuse the hardware breakpoint ("error: 9 sending the hardware
    # breakpoint request"): its location is then unresolved and holds no register.
    held = 0 if "hardware breakpoint request" in session.transcript else 1
    assert debugger == "lldb" or held == 1, session.describe()
    assert session.json("watches_hbreak")["slots_used"] == 1 + held, session.json("watches_hbreak")
    assert session.json("watch_hbreak")["slots_used"] == 2 + held, session.json("watch_hbreak")


@pytest.mark.parametrize(("debugger", "minor"), PARAMS)
def test_an_immortal_object_is_refused(slots_root: Path, debugger: str, minor: str) -> None:
    session = _session(slots_root, debugger, minor)
    data = session.json("immortal")
    if _immortal(minor):
        assert set(data) == {"error"} and "immortal" in data["error"], data
    else:
        assert "error" not in data and data["type"] == "NoneType" and data["slots_used"] == 2, data
