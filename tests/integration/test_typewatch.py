"""`pylife watch --type NAME` in real gdb and lldb-16, armed BEFORE the program runs.

Two scenarios of the buggy extension (tests/fixtures/buggy/scenarios.py),
with no address typed anywhere:
- leak: every new ``__main__.Victim`` (a Python class) is watched from its
  allocation; the leaked one's balance names buggy_leak.
- crowd: ``buggy.Thing``, a static type of the extension (not loaded when the
  watch is given: pending until PyType_Ready), 6 instances alive at once,
  then 2 more after they are freed, with --max 5: 4 watched, 2 skipped
  (every hardware slot busy), 1 more in a freed one's slot, then done.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from .driver import Session, run_session
from .environment import DEBUGGERS, REPO_ROOT
from .once import launch_command, once, require, shared_root

BUGGY = REPO_ROOT / "tests" / "fixtures" / "buggy"
sys.path.insert(0, str(BUGGY))
from build import build  # noqa: E402

LEAK_MINORS = ("3.8", "3.10", "3.12", "3.13")
CROWD_MINORS = ("3.8", "3.13")
N = 3
PENDING = "pending: armed when the type is created"
SCENARIOS = {
    "leak": ("Victim", []),
    "crowd": ("buggy.Thing", ["--max", "5"]),
}


def _session(root: Path, debugger: str, minor: str, scenario: str) -> Session:
    python = require(debugger, minor)
    name, options = SCENARIOS[scenario]

    def make(workdir: Path) -> Session:
        ext = build(python, root / "build")
        out = workdir / "scenario.jsonl"
        env = {"PYTHONPATH": str(ext), "PYLIFE_SCENARIO_OUT": str(out), "PYLIFE_LOG_DIR": str(workdir)}
        watch = " ".join(["pylife watch --type", name, *options])
        # Given before the program runs (lldb's driver script cannot launch and
        # then continue: its commands keep the context of the import, without a process).
        setup = [watch, "pylife watches", launch_command(debugger)]  # stops at the scenario's SIGTRAP
        commands = [
            ("watches_at_stop", "pylife watches --json"),
            ("continue", "continue"),  # to the end of the program
            ("watches", "pylife watches --json"),
            ("watches_text", "pylife watches"),
            ("history", "pylife history --json"),
            ("history_text", "pylife history"),
            ("balance", "pylife history --balance --json"),
        ]
        n = N if scenario == "leak" else 6
        return run_session(debugger, "live", workdir, setup, commands,
                           program=[str(python), str(BUGGY / "scenarios.py"), scenario, "--stop", "--n", str(n)],
                           truth=out, env=env)

    return once(root, f"{debugger}-{minor}-{scenario}", make)


@pytest.fixture(scope="module")
def typewatch_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_root(tmp_path_factory, "pylife-typewatch")


def _params(minors: tuple[str, ...]) -> list[Any]:
    return [pytest.param(d, m, id=f"{d}-{m}", marks=getattr(pytest.mark, d)) for d in DEBUGGERS for m in minors]


def _lines(session: Session, label: str) -> list[dict[str, Any]]:
    """The objects of one `history --json` document ({"objects": [...]})."""
    objects = session.json(label)["objects"]
    assert isinstance(objects, list)
    return objects


def _type_watch(session: Session, label: str) -> dict[str, Any]:
    (status,) = session.json(label)["type_watches"]
    return status


@pytest.mark.parametrize("debugger,minor", _params(LEAK_MINORS))
def test_leak_found_by_type_from_the_start(typewatch_root: Path, debugger: str, minor: str) -> None:
    session = _session(typewatch_root, debugger, minor, "leak")
    truth = session.truth or {}
    assert PENDING in session.transcript and "type Victim: pending (no such type yet)" in session.transcript
    status = _type_watch(session, "watches_at_stop")
    assert status["state"] == "armed" and [t["name"] for t in status["types"]] == ["__main__.Victim"]
    # The victim was made before the stop: watched from its allocation, no address typed.
    assert status["objects"] == [truth["victim"]], (status, truth)
    assert (status["matched"], status["watched"], status["skipped"]) == (1, 1, 0)
    histories = [h for h in _lines(session, "history") if h["address"] == truth["victim"]]
    (history,) = histories
    assert history["type"] == "__main__.Victim" and history["origin"] == "watch --type Victim"
    assert history["initial"] == 1 and history["freed_at"] is None  # still alive at exit: leaked
    allocation = history["allocation"]
    assert allocation["function"] == "PyType_GenericAlloc", allocation
    functions = [f["function"] for f in allocation["stack"]]
    assert "scenario_leak" in functions and any(f["kind"] == "python" for f in allocation["stack"]), functions
    assert "scenario_leak" in (allocation["python"] or "")
    (balance,) = [b for b in _lines(session, "balance") if b["address"] == truth["victim"]]
    top = balance["leak_candidates"][0]
    assert top["function"] == "buggy_leak" and top["unreleased"] == N, balance
    assert "allocated by PyType_GenericAlloc" in session.record("history_text").output
    assert "Traceback" not in session.transcript and "Python Exception" not in session.transcript


@pytest.mark.parametrize("debugger,minor", _params(CROWD_MINORS))
def test_static_type_pending_max_and_skipped(typewatch_root: Path, debugger: str, minor: str) -> None:
    session = _session(typewatch_root, debugger, minor, "crowd")
    after = _scenario_after(session)
    assert PENDING in session.transcript and "type buggy.Thing: pending (no such type yet)" in session.transcript
    at_stop = _type_watch(session, "watches_at_stop")
    # buggy was imported before the stop: its static type was readied, nothing made yet.
    assert at_stop["state"] == "armed" and [t["name"] for t in at_stop["types"]] == ["buggy.Thing"], at_stop
    assert at_stop["matched"] == 0
    status = _type_watch(session, "watches")
    assert (status["state"], status["matched"], status["watched"], status["skipped"]) == ("done", 7, 5, 2), status
    first = [int(a, 16) for a in after["first"]]
    later = [int(a, 16) for a in after["later"]]
    assert status["objects"] == first[:4] + later[:1], (status, after)
    histories = [h for h in _lines(session, "history") if h.get("origin") == "watch --type buggy.Thing"]
    # One history per occupant (later[0] may reuse first[0]'s block: a history of its own).
    assert len(histories) == len(status["objects"]) and all(h["type"] == "buggy.Thing" for h in histories)
    makers = {h["allocation"]["function"] for h in histories}
    assert makers == {"PyType_GenericAlloc", "_PyObject_New"}, makers
    by_new_thing = [h for h in histories if h["allocation"]["function"] == "_PyObject_New"]
    assert all("buggy_new_thing" in [f["function"] for f in h["allocation"]["stack"]] for h in by_new_thing)
    freed = [h["address"] for h in histories if h["freed_at"] is not None]
    assert set(first[:4]) - set(later) <= set(freed), (freed, after)
    assert "7 seen, 5 watched of at most 5, 2 skipped" in session.record("watches_text").output
    assert "Traceback" not in session.transcript and "Python Exception" not in session.transcript


def _scenario_after(session: Session) -> dict[str, Any]:
    assert session.truth_path is not None
    lines = [json.loads(line) for line in session.truth_path.read_text().splitlines() if line.strip()]
    return next(r for r in lines if r.get("phase") == "after")
