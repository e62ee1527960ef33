"""`pylife diagnose` on the buggy C extension's crash zoo, live and from the core, in gdb and lldb-16.

One crash per class a post-mortem must tell apart (tests/fixtures/buggy,
scenarios.py; each scenario's "before" line says what it expects):

- over_decref_crash, borrowed_crash, stale_local, dict_borrowed (under
  PYTHONMALLOC=debug): a freed victim is used; its ob_type is 0xDD fill, so
  the type is erased and diagnose gives the rerun that names it. The stale
  pointer is an argument of the crashing frame, or only a local of it
  (stale_local); dict_borrowed's culprit is the Python line that used it.
- dealloc_freed: a deallocator runs on a freed object (small fault address,
  the object being deallocated is FREED): over-decref, not a NULL dereference.
- null_from_freed: a NULL read out of a freed object's cleared field: use
  after free, not a NULL dereference.
- corrupt_free_list: an incref on a freed block made its pool's free-list
  link 0x1: named by pool.
- null_member, null_uninitialised (the controls): a NULL member of a LIVE
  object: null-dereference.
- freed_local: a crash (a SIGSEGV the process sends itself) that touches no
  object, while a Python frame's local points at a freed victim: found only
  by searching the Python frames, a use after free.

One debugger session per (scenario, debugger, version): it launches the
scenario, diagnoses the crash, then opens the core (gdb writes it with
gcore; lldb-16 opens gdb's) and diagnoses again.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from .driver import Session
from .environment import DEBUGGERS, REPO_ROOT
from .once import live_then_core_session, malloc_debug_setup, once, require, shared_root

BUGGY = REPO_ROOT / "tests" / "fixtures" / "buggy"
sys.path.insert(0, str(BUGGY))
from build import build  # noqa: E402

MINORS = ("3.8", "3.10", "3.12", "3.13")
# scenario -> run under PYTHONMALLOC=debug
SCENARIOS = {"over_decref_crash": True, "borrowed_crash": True, "stale_local": True, "dict_borrowed": True,
             "dealloc_freed": False, "null_from_freed": False, "corrupt_free_list": False,
             "null_member": False, "null_uninitialised": False, "freed_local": False}
# A scenario on fewer versions (time budget): freed_local on the two value-stack layouts that differ most.
SCENARIO_MINORS = {"freed_local": ("3.8", "3.12")}
COMMANDS = [("diagnose", "pylife diagnose --json"), ("diagnose_text", "pylife diagnose")]


def _make(debugger: str, minor: str, scenario: str, root: Path) -> Session:
    python = require(debugger, minor)
    gdb_core = root / f"gdb-{minor}-{scenario}" / "stop.core"
    if debugger != "gdb":
        _make("gdb", minor, scenario, root)  # writes the core this session opens
        if not gdb_core.exists():
            pytest.skip(f"gdb wrote no core for {minor} {scenario}")

    def make(workdir: Path) -> Session:
        ext = build(python, root / "build")
        out = workdir / "scenario.jsonl"
        env = {"PYTHONPATH": str(ext), "PYLIFE_SCENARIO_OUT": str(out)}
        setup = malloc_debug_setup(debugger) if SCENARIOS[scenario] else []
        return live_then_core_session(debugger, workdir, COMMANDS, [str(python), str(BUGGY / "scenarios.py"), scenario],
                                      out, gdb_core, setup=setup, env=env)
    return once(root, f"{debugger}-{minor}-{scenario}", make)


@pytest.fixture(scope="module")
def buggy_crash_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_root(tmp_path_factory, "pylife-buggy-zoo")


PARAMS = [pytest.param(debugger, minor, scenario, mode, id=f"{debugger}-{minor}-{scenario}-{mode}",
                       marks=getattr(pytest.mark, debugger))
          for debugger in DEBUGGERS for minor in MINORS for scenario in SCENARIOS for mode in ("live", "core")
          if minor in SCENARIO_MINORS.get(scenario, MINORS)]


@pytest.fixture
def diagnosis(buggy_crash_root: Path, debugger: str, minor: str, scenario: str,
              mode: str) -> tuple[Session, dict[str, Any]]:
    session = _make(debugger, minor, scenario, buggy_crash_root)
    if mode == "core" and debugger != "gdb":
        # The core is gdb's: its victim lives where gdb's launch put it.
        session.truth = _make("gdb", minor, scenario, buggy_crash_root).truth
    assert session.truth is not None, f"the scenario wrote no 'before' line\n{session.describe()}"
    assert "crashed" not in session.truth, f"the crash did not happen\n{session.describe()}"
    return session, session.json(f"{mode}:diagnose")


@pytest.mark.parametrize("debugger,minor,scenario,mode", PARAMS)
def test_diagnose_zoo(diagnosis: tuple[Session, dict[str, Any]], debugger: str, scenario: str, mode: str) -> None:
    session, data = diagnosis
    truth: dict[str, Any] = session.truth  # type: ignore[assignment]
    expect = truth["expect"]
    assert truth["scenario"] == scenario and (truth["pythonmalloc"] == "debug") == SCENARIOS[scenario], truth
    # A load through 0xDDDD... (no canonical address) raises #GP: SIGSEGV, or SIGBUS for a stack-segment fault.
    assert data["signal"] in ("SIGSEGV", "SIGBUS"), data
    assert data["kind"] == expect["kind"], data["summary"]
    assert data["culprit"] is not None and data["culprit"]["function"] == expect["culprit"], data["summary"]
    assert f"culprit: {expect['culprit']}" in data["summary"]
    objects = {o["address"]: o for o in data["objects"]}
    if scenario == "corrupt_free_list":
        assert any("free list corrupt: link 0x1, an incref on a freed block" in f for f in data["free_lists"]), data
        assert "free list corrupt: link 0x1" in data["evidence"], data["evidence"]
        return
    victim = objects.get(truth["victim"])
    assert victim is not None, f"the victim {truth['victim']:#x} is not among {data['objects']}"
    if expect["kind"] == "null-dereference":
        assert victim["verdict"] == "ALIVE" and victim["type"] == truth["victim_type"], victim
        assert data["victim"] is None or data["victim"]["address"] != truth["victim"], data["victim"]
        return
    assert victim["verdict"] == "FREED", victim
    assert data["victim"]["address"] == truth["victim"], data["victim"]
    if "source" in expect:  # freed_local: only the Python frame's local still points at it
        assert data["victim"]["source"] == expect["source"], data["victim"]
    if SCENARIOS[scenario]:
        # The debug fill overwrote ob_type: said, with the rerun that names it.
        assert any("0xDD" in r for r in victim["reasons"]), victim
        assert victim["type"] is None and data["victim"]["type_erased"], victim
        assert data["rerun"].startswith(f"pylife run --debugger {debugger} --watch-address {truth['victim']:#x} -- "), \
            data["rerun"]
        assert "python3" in data["rerun"], data["rerun"]
        if mode == "live":
            assert data["rerun"].endswith(f"scenarios.py {scenario}"), data["rerun"]
    else:
        assert victim["type"] == truth["victim_type"] and not data["victim"]["type_erased"], victim
        assert data["rerun"] is None
    python = [f["function"] for f in data["stack"] if f["kind"] == "python"]
    assert python[:2] == ["scenario_" + scenario, "main"], python
    if scenario == "dict_borrowed":  # freed while the dict still held it: found by scanning the GC lists
        held = f"dict {truth['container']:#x} (key 'db')"
        assert held in data["still_referenced"]["found"], data["still_referenced"]
        assert f"freed while {held} still points to it" in data["summary"]


@pytest.mark.parametrize("debugger,minor,scenario,mode", PARAMS)
def test_diagnose_zoo_text(diagnosis: tuple[Session, dict[str, Any]], mode: str) -> None:
    session, data = diagnosis
    text = session.record(f"{mode}:diagnose_text")
    assert text.error is None, text
    assert text.output.startswith(f"pylife diagnose: {data['kind']}") and "stack:" in text.output
    # Each object once: in the list under the summary, not also in the summary.
    lines = text.output.splitlines()
    for obj in data["objects"]:
        assert sum(line.startswith(f"  {obj['address']:#x} ") for line in lines) == 1, text.output
    assert not any(line.startswith("object 0x") for line in lines), text.output
    assert "None" not in text.output.split("stack:")[0], text.output
