"""`pylife diagnose` on real crashes, live and from the core, in gdb and lldb-16.

tests/fixtures/crash_fixture.py crashes in one of four ways (a NULL member
of a live list, a smashed type, a use after free under PYTHONMALLOC=debug,
the debug allocator's "bad trailing pad byte" fatal error). The debugger
launches it from the driver's first command (lldb-16 in batch mode runs no
further -o command after a crash stop), diagnoses the stop and, in gdb,
writes a core; both debuggers then diagnose that core.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .driver import Session
from .environment import DEBUGGERS, REPO_ROOT, SID_RELEASES
from .once import core_session, live_session, malloc_debug_setup, once, require, shared_root

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "crash_fixture.py"
MINORS = ("3.8", "3.10", "3.12", "3.13")
SCENARIOS = {"null": False, "corrupt": False, "uaf": True, "fatal": True}  # name -> PYTHONMALLOC=debug
COMMANDS = [("diagnose", "pylife diagnose --json"), ("diagnose_text", "pylife diagnose")]
# A C function the crash must show on the stack (the guilty one, or the fatal error's).
GUILTY = {"null": ("list_item", "list_subscript"), "corrupt": ("PyObject_Repr",),
          "uaf": ("PyObject_GetAttr", "_PyObject_LookupAttr", "_PyEval_EvalFrameDefault",
                  "_PyObject_GetAttrStackRef"),  # 3.15's LOAD_ATTR
          "fatal": ("_PyMem_DebugRawFree", "_PyMem_DebugCheckAddress")}


def _make(debugger: str, minor: str, scenario: str, mode: str, root: Path) -> Session:
    python = str(require(debugger, minor))
    debug = SCENARIOS[scenario]
    if mode == "live":
        def live(workdir: Path) -> Session:
            truth = workdir / "truth.json"
            return live_session(debugger, workdir, COMMANDS, [python, str(FIXTURE), scenario, str(truth)], truth,
                                setup=malloc_debug_setup(debugger) if debug else [], launch_in_driver=True)
        return once(root, f"{debugger}-{minor}-{scenario}-live", live)
    origin = _make("gdb", minor, scenario, "live", root)
    return core_session(root, f"{debugger}-{minor}-{scenario}-core", debugger, python, origin, COMMANDS)


@pytest.fixture(scope="module")
def crash_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_root(tmp_path_factory, "pylife-crash")


PARAMS = [pytest.param(debugger, minor, scenario, mode, id=f"{debugger}-{minor}-{scenario}-{mode}",
                       marks=getattr(pytest.mark, debugger))
          for debugger in DEBUGGERS for minor in MINORS for scenario in SCENARIOS for mode in ("live", "core")] + [
    # sid's 3.14/3.15 under its gdb 18 and lldb-21: the use after free (the time budget keeps it to one scenario)
    pytest.param(debugger, minor, "uaf", mode, id=f"{debugger}-{minor}-uaf-{mode}", marks=getattr(pytest.mark, debugger))
    for debugger in DEBUGGERS for minor in SID_RELEASES for mode in ("live", "core")]


@pytest.fixture
def diagnosis(crash_root: Path, debugger: str, minor: str, scenario: str, mode: str) -> tuple[Session, dict[str, Any]]:
    session = _make(debugger, minor, scenario, mode, crash_root)
    assert session.truth is not None, f"the fixture wrote no truth\n{session.describe()}"
    return session, session.json("diagnose")


@pytest.mark.parametrize("debugger,minor,scenario,mode", PARAMS)
def test_diagnose(diagnosis: tuple[Session, dict[str, Any]], debugger: str, mode: str, scenario: str) -> None:
    session, data = diagnosis
    truth: dict[str, Any] = session.truth  # type: ignore[assignment]
    victim = truth["objects"]["victim"]
    assert data["kind"] == truth["kind"], data["summary"]
    if scenario == "null" and debugger == "lldb" and mode == "core":
        # lldb-16 gives no fault address (nor si_code) for ELF cores: computed from the faulting instruction.
        assert data["fault_address"] == 8 and any("faulting instruction" in n for n in data["notes"]), data
    # A load through a non-canonical pointer (0xDDDD...) raises #GP: SIGSEGV, or SIGBUS for a stack-segment fault.
    signals = {"fatal": ("SIGABRT",), "uaf": ("SIGSEGV", "SIGBUS")}.get(scenario, ("SIGSEGV",))
    assert data["signal"] in signals, data
    assert {"signal", "kind", "summary", "objects", "stack"} <= set(data)
    native = [f["function"] for f in data["stack"] if f["kind"] == "native"]
    assert any(name in GUILTY[scenario] for name in native), native
    python = [f["function"] for f in data["stack"] if f["kind"] == "python"]
    assert python[:2] == [scenario, "<module>"], python
    found = [o for o in data["objects"] if o["address"] == victim["address"]]
    assert found, f"the victim {victim['address']:#x} is not among {data['objects']}"
    obj = found[0]
    assert obj["verdict"] == truth["verdict"] if scenario != "fatal" else obj["verdict"] in ("ALIVE", "FREED"), obj
    if scenario in ("null", "fatal"):
        assert obj["type"] == victim["type"], obj
    if scenario == "fatal":
        assert data["fatal_error"]["message"] == "bad trailing pad byte", data["fatal_error"]
        assert any("trailing pad bytes are overwritten" in r for r in obj["reasons"]), obj
    if scenario == "uaf":
        assert any("0xDD" in r for r in obj["reasons"]), obj
    if scenario == "null":
        assert data["fault_address"] is None or data["fault_address"] < 4096, data


@pytest.mark.parametrize("debugger,minor,scenario,mode", PARAMS)
def test_diagnose_text(diagnosis: tuple[Session, dict[str, Any]], scenario: str) -> None:
    session, data = diagnosis
    text = session.record("diagnose_text")
    assert text.error is None, text
    assert text.output.startswith(f"pylife diagnose: {data['kind']}") and "stack:" in text.output
