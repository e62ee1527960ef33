"""`pylife diagnose` on the buggy C extension's real crashes, live and from the core, in gdb and lldb-16.

tests/fixtures/buggy/scenarios.py over_decref_crash / borrowed_crash (under
PYTHONMALLOC=debug): the extension frees the victim, a ``__main__.Victim``,
with an extra Py_DECREF on a borrowed argument, or by deleting a list item it
holds only a borrowed pointer to; the same C function then calls
PyObject_Repr on it and the 0xDD-filled ob_type faults. The debugger launches
the scenario from the driver's first command (lldb-16 in batch mode runs no
further -o command after a crash stop), diagnoses the stop and, in gdb,
writes a core; both debuggers then diagnose that core.

What the crash stop itself proves is a use after free (a freed object was
followed), and that is the kind expected: crash.py says over-decref only when
a freed object is being deallocated again, which these crashes do not do.
The stale type is gone (the debug hooks overwrote ob_type), so the victim is
found by address, FREED, with the 0xDD evidence; the guilty C function is on
the merged stack, just under PyObject_Repr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from .driver import Session
from .environment import DEBUGGERS, REPO_ROOT
from .once import core_session, live_session, malloc_debug_setup, once, require, shared_root

BUGGY = REPO_ROOT / "tests" / "fixtures" / "buggy"
sys.path.insert(0, str(BUGGY))
from build import build  # noqa: E402

MINORS = ("3.8", "3.10", "3.12", "3.13")
SCENARIOS = {"over_decref_crash": "buggy_over_decref_crash", "borrowed_crash": "buggy_borrowed_crash"}
COMMANDS = [("diagnose", "pylife diagnose --json"), ("diagnose_text", "pylife diagnose")]


def _make(debugger: str, minor: str, scenario: str, mode: str, root: Path) -> Session:
    python = require(debugger, minor)
    if mode == "live":
        def live(workdir: Path) -> Session:
            ext = build(python, root / "build")
            out = workdir / "scenario.jsonl"
            env = {"PYTHONPATH": str(ext), "PYLIFE_SCENARIO_OUT": str(out)}
            return live_session(debugger, workdir, COMMANDS, [str(python), str(BUGGY / "scenarios.py"), scenario], out,
                                setup=malloc_debug_setup(debugger), env=env, launch_in_driver=True)
        return once(root, f"{debugger}-{minor}-{scenario}-live", live)
    origin = _make("gdb", minor, scenario, "live", root)
    return core_session(root, f"{debugger}-{minor}-{scenario}-core", debugger, str(python), origin, COMMANDS)


@pytest.fixture(scope="module")
def buggy_crash_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_root(tmp_path_factory, "pylife-buggy-crash")


PARAMS = [pytest.param(debugger, minor, scenario, mode, id=f"{debugger}-{minor}-{scenario}-{mode}",
                       marks=getattr(pytest.mark, debugger))
          for debugger in DEBUGGERS for minor in MINORS for scenario in SCENARIOS for mode in ("live", "core")]


@pytest.fixture
def diagnosis(buggy_crash_root: Path, debugger: str, minor: str, scenario: str,
              mode: str) -> tuple[Session, dict[str, Any]]:
    session = _make(debugger, minor, scenario, mode, buggy_crash_root)
    assert session.truth is not None, f"the scenario wrote no 'before' line\n{session.describe()}"
    assert "crashed" not in session.truth, f"the crash did not happen\n{session.describe()}"
    return session, session.json("diagnose")


@pytest.mark.parametrize("debugger,minor,scenario,mode", PARAMS)
def test_diagnose_buggy(diagnosis: tuple[Session, dict[str, Any]], scenario: str) -> None:
    session, data = diagnosis
    truth: dict[str, Any] = session.truth  # type: ignore[assignment]
    assert truth["scenario"] == scenario and truth["pythonmalloc"] == "debug", truth
    assert {"signal", "kind", "summary", "objects", "stack"} <= set(data)
    # A load through 0xDDDD... (no canonical address) raises #GP: SIGSEGV, or SIGBUS for a stack-segment fault.
    assert data["signal"] in ("SIGSEGV", "SIGBUS"), data
    assert data["kind"] == "use-after-free", data["summary"]
    found = [o for o in data["objects"] if o["address"] == truth["victim"]]
    assert found, f"the victim {truth['victim']:#x} is not among {data['objects']}"
    victim = found[0]
    assert victim["verdict"] == "FREED", victim
    assert any("0xDD" in r for r in victim["reasons"]), victim
    assert victim["type"] in (None, truth["victim_type"]), victim  # the debug fill overwrote ob_type
    # Nothing else is called freed: the live module (`self`), list, frames... are ALIVE.
    assert [o for o in data["objects"] if o["verdict"] != "ALIVE"] == [victim], data["objects"]
    native = [f["function"] for f in data["stack"] if f["kind"] == "native"]
    guilty = SCENARIOS[scenario]
    assert guilty in native, native
    assert "PyObject_Repr" in native[:native.index(guilty)], native  # the faulting call, made by the guilty function
    python = [f["function"] for f in data["stack"] if f["kind"] == "python"]
    assert python[:2] == ["scenario_" + scenario, "main"], python


@pytest.mark.parametrize("debugger,minor,scenario,mode", PARAMS)
def test_diagnose_buggy_text(diagnosis: tuple[Session, dict[str, Any]], scenario: str) -> None:
    session, data = diagnosis
    text = session.record("diagnose_text")
    assert text.error is None, text
    assert text.output.startswith(f"pylife diagnose: {data['kind']}") and "stack:" in text.output
    assert SCENARIOS[scenario] in text.output
