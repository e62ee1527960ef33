"""The buggy extension's ``reuse`` scenario in real gdb and lldb-16.

One debugger session per (debugger, interpreter): the scenario stops itself
(SIGTRAP) before its bugs; the session follows the victim's address
(`watch --address`) and watches an object that leaked before the stop, then
continues through every later stop and checks what each stop was:

- the two writes through buggy.touch_cached's stale pointer, after a new
  Victim took the freed block: use after free, naming both occupants;
- the program's own SIGTRAPs (os.kill, then raise() in C), which must stop in
  both debuggers while watches are armed (lldb-16 reports them as a
  watchpoint hit: pylife tells them apart by si_code).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from pylife.commands import VERBS

from .driver import Session, run_session
from .environment import DEBUGGERS, REPO_ROOT
from .once import launch_command, once, require, shared_root

BUGGY = REPO_ROOT / "tests" / "fixtures" / "buggy"
sys.path.insert(0, str(BUGGY))
from build import build  # noqa: E402

MINORS = ("3.8", "3.10", "3.12", "3.13")
COMMANDS = [
    ("json:history_empty", "pylife history --json"),
    ("json:balance_empty", "pylife history --balance --json"),
    ("json:version", "pylife version --json"),
    ("json:info", "pylife info {victim} --json"),
    ("json:pymalloc", "pylife pymalloc --json"),
    ("json:alloc-site", "pylife alloc-site {victim} --json"),
    ("json:diagnose", "pylife diagnose --json"),
    ("watch", "pylife watch --address {victim} --json --log {log}"),
    ("watch_leaked", "pylife watch {leaked} --json"),
    ("json:watches", "pylife watches --json"),
    ("continue_stale_incref", "continue"),
    ("stale_bt", "pylife bt --json"),
    ("continue_stale_decref", "continue"),
    ("continue_kill", "continue"),
    ("bt_kill", "pylife bt --json"),
    ("json:leaks_now", "pylife leaks --json"),
    ("leaks_now_text", "pylife leaks"),
    ("json:frame", "pylife frame --json"),
    ("frame_select", "pylife frame 1 --json"),
    ("frame_kept", "pylife frame --json"),
    ("json:history", "pylife history --json"),
    ("json:balance", "pylife history --balance --json"),
    ("json:event", "pylife history --full 1 --json"),
    ("json:history_load", "pylife history --load {log} --json"),
    ("continue_raise", "continue"),
    ("bt_raise", "pylife bt --json"),
    ("frame_after_resume", "pylife frame --json"),
    ("continue_exit", "continue"),
    ("json:leaks", "pylife leaks --json"),
    ("json:unwatch", "pylife unwatch --all --json"),
]
# Which command shows each verb's document (every verb must have one).
VERB_COMMANDS = {"history": "json:history", "version": "json:version", "info": "json:info", "bt": "bt_kill",
                 "pymalloc": "json:pymalloc", "alloc-site": "json:alloc-site", "diagnose": "json:diagnose",
                 "watch": "watch", "watches": "json:watches", "unwatch": "json:unwatch", "frame": "json:frame",
                 "leaks": "json:leaks"}


def _session(root: Path, debugger: str, minor: str) -> Session:
    python = require(debugger, minor)

    def make(workdir: Path) -> Session:
        ext = build(python, root / "build")
        out = workdir / "scenario.jsonl"
        # tracemalloc: alloc-site has a trace to show (its tables are malloc'd, not pymalloc'd).
        env = {"PYTHONPATH": str(ext), "PYLIFE_SCENARIO_OUT": str(out), "PYLIFE_LOG_DIR": str(workdir),
               "PYTHONTRACEMALLOC": "1"}
        log = str(workdir / "history.jsonl")
        commands = [(label, template.replace("{log}", log)) for label, template in COMMANDS]
        return run_session(debugger, "live", workdir, [launch_command(debugger)], commands,
                           program=[str(python), str(BUGGY / "scenarios.py"), "reuse", "--stop"], truth=out, env=env)

    return once(root, f"{debugger}-{minor}-reuse", make)


@pytest.fixture(scope="module")
def follow_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_root(tmp_path_factory, "pylife-follow")


PARAMS = [pytest.param(d, m, id=f"{d}-{m}", marks=getattr(pytest.mark, d)) for d in DEBUGGERS for m in MINORS]


def _stopped_in(session: Session, label: str) -> list[str]:
    """Functions of the stopped thread's merged stack (the one holding the GIL)."""
    data: dict[str, Any] = session.json(label)
    thread = next(t for t in data["threads"] if t["holds_gil"])
    return [f["function"] for f in thread["frames"]]


@pytest.mark.parametrize("debugger,minor", PARAMS)
def test_the_programs_own_sigtrap_stops_with_watches_armed(follow_root: Path, debugger: str, minor: str) -> None:
    session = _session(follow_root, debugger, minor)
    truth = session.truth or {}
    assert session.json("watch")["address"] == truth["victim"]
    assert session.json("watch_leaked")["address"] == truth["leaked"]
    # os.kill(getpid(), SIGTRAP): stopped in kill(), called by os.kill.
    functions = _stopped_in(session, "bt_kill")
    assert any("kill" in f for f in functions[:4]), functions
    # raise(SIGTRAP) in C: stopped under buggy_trap.
    functions = _stopped_in(session, "bt_raise")
    assert "buggy_trap" in functions, functions
    assert truth.get("phase") == "after" and truth["reused"] is True, truth
    assert "Traceback" not in session.transcript and "Python Exception" not in session.transcript


@pytest.mark.parametrize("debugger,minor", PARAMS)
def test_python_frame_selection_lasts_until_the_process_runs(follow_root: Path, debugger: str, minor: str) -> None:
    """`pylife frame N` holds across commands at one stop and is gone after `continue`, like gdb's `frame`."""
    session = _session(follow_root, debugger, minor)
    selected = session.json("frame_select")
    assert (selected["frame"], selected["selected"]) == (1, True), selected
    assert session.json("frame_kept") == selected
    after = session.json("frame_after_resume")
    assert (after["frame"], after["selected"]) == (0, False), after


@pytest.mark.parametrize("debugger,minor", PARAMS)
def test_every_verb_prints_one_json_document(follow_root: Path, debugger: str, minor: str) -> None:
    """The JSON contract: `--json` prints exactly one line, one JSON object; several objects
    are `{"objects": [...]}`, also when there are none."""
    session = _session(follow_root, debugger, minor)
    truth = session.truth or {}
    missing = sorted(set(VERBS) - set(VERB_COMMANDS))
    assert not missing, f"verbs without a --json check in this test: {missing}"
    documents = {label: session.json(label) for label, _command in COMMANDS if label.startswith("json:") or
                 label in VERB_COMMANDS.values()}
    for verb, label in VERB_COMMANDS.items():
        assert "error" not in documents[label] or verb == "diagnose", (verb, documents[label])
    assert documents["json:history_empty"] == {"objects": []}
    assert documents["json:balance_empty"] == {"objects": []}
    histories = documents["json:history"]["objects"]
    addresses = [truth["victim"], truth["leaked"], truth["victim"]]  # the followed address holds two occupants
    assert [h["address"] for h in histories] == addresses
    assert [a["address"] for a in documents["json:balance"]["objects"]] == addresses
    assert documents["json:history_load"]["objects"][0]["events"] == histories[0]["events"]
    assert documents["json:event"]["seq"] == 1


def _stop_text(session: Session, label: str) -> str:
    record = session.record(label)
    return record.output + (record.error or "")


@pytest.mark.parametrize("debugger,minor", PARAMS)
def test_a_stale_pointer_after_the_reuse_is_caught_with_watch_address(follow_root: Path, debugger: str,
                                                                       minor: str) -> None:
    session = _session(follow_root, debugger, minor)
    truth = session.truth or {}
    victim = truth["victim"]
    assert truth["reused"] is True and truth["occupant"] == victim, truth
    watch = session.json("watch")
    assert watch["follow"] is True and watch["occupancy"] == 0
    # Both stale writes stopped, each naming the dead object and the block's new occupant.
    for label in ("continue_stale_incref", "continue_stale_decref"):
        text = _stop_text(session, label) + (session.transcript if debugger == "lldb" else "")
        assert "use after free through a stale pointer: buggy_touch_cached" in text, (label, session.describe())
        assert "__main__.Victim (occupant 0, freed at event" in text
        assert "the block now holds a __main__.Victim (occupant 1, allocated at event" in text
    assert "buggy_touch_cached" in _stopped_in(session, "stale_bt")
    histories = [h for h in session.json("json:history")["objects"] if h["address"] == victim]
    dead, occupant = histories
    assert (dead["occupancy"], occupant["occupancy"]) == (0, 1)
    assert dead["type"] == occupant["type"] == "__main__.Victim"
    assert dead["freed_at"] is not None and dead["closed"].startswith("memory reused by a new __main__.Victim")
    stale = [e for e in dead["events"] if e["kind"] == "use-after-free"]
    assert [(e["writer"], e["new"] - e["old"]) for e in stale] == [("buggy_touch_cached", 1), ("buggy_touch_cached", -1)]
    assert stale[0]["seq"] > occupant["allocated_at"]
    # The new occupant's own references: its allocation, then the eval loop and buggy_leak.
    kinds = [e["kind"] for e in occupant["events"]]
    assert kinds[0] == "reuse" and occupant["events"][0]["seq"] == occupant["allocated_at"], kinds
    assert any(e["writer"] == "buggy_leak" for e in occupant["events"]), occupant["events"]
    assert not any(e["writer"] == "buggy_touch_cached" for e in occupant["events"])
    loaded = [h for h in session.json("json:history_load")["objects"] if h["address"] == victim]
    assert [(h["occupancy"], len(h["events"])) for h in loaded] == [(h["occupancy"], len(h["events"])) for h in histories]


def _by_key(document: dict[str, Any]) -> dict[tuple[int, int], dict[str, Any]]:
    return {(o["address"], o["occupancy"]): o for o in document["objects"]}


@pytest.mark.parametrize("debugger,minor", PARAMS)
def test_leaks_at_a_stop_and_the_screen_at_exit(follow_root: Path, debugger: str, minor: str) -> None:
    session = _session(follow_root, debugger, minor)
    truth = session.truth or {}
    victim, leaked = truth["victim"], truth["leaked"]
    # At the stop after the bugs: the dead victim, its successor and the early leak, both alive.
    now = session.json("json:leaks_now")
    assert (now["at_exit"], now["watched"], now["alive"], now["freed"]) == (False, 3, 2, 1), now
    objects = _by_key(now)
    dead, occupant, early = objects[victim, 0], objects[victim, 1], objects[leaked, 0]
    assert dead["status"] == "freed" and dead["free_site"]["seq"] == dead["freed_at"]
    assert (occupant["status"], occupant["refcnt"]) == ("alive", truth["occupant_refcnt"])
    assert occupant["top_leak_candidate"]["function"] == "buggy_leak", occupant["unreleased"]
    assert occupant["held_before_watch"] == 0  # followed from its allocation: every reference has a site
    # The early leak's extra reference was taken before the watch: no site, still reported.
    assert (early["status"], early["refcnt"]) == ("alive", truth["leaked_refcnt"])
    assert early["held_before_watch"] == truth["leaked_refcnt"] and early["top_leak_candidate"] is None
    assert [u["writer"] for u in now["uses_after_free"]] == ["buggy_touch_cached", "buggy_touch_cached"]
    assert "top leak candidate buggy_leak" in session.record("leaks_now_text").output
    # When the process exits, pylife prints the screen by itself (gdb: exited event; lldb: _exit breakpoint).
    screen = _stop_text(session, "continue_exit") + session.transcript
    assert "pylife leaks at exit (exit status 0): 3 objects watched: 2 alive, 1 freed, 2 uses after free" in screen, \
        session.describe()
    assert f"{victim:#x} occupant 1 __main__.Victim: refcount 1; top leak candidate buggy_leak" in screen
    assert f"{leaked:#x} __main__.Victim: refcount 1; 1 reference(s) held since before the watch was armed" in screen
    assert "use after free through a stale pointer" in screen.split("pylife leaks at exit", 1)[1]
    # `pylife leaks` after the exit shows that screen's data.
    after = session.json("json:leaks")
    assert after["at_exit"] is True and after["exit_status"] == 0 and (after["alive"], after["freed"]) == (2, 1)
    assert {key: o["refcnt"] for key, o in _by_key(after).items()} == {
        (victim, 0): None, (victim, 1): 1, (leaked, 0): 1}
