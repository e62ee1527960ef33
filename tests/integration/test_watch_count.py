"""`pylife watch` records exactly the refcount changes a bare hardware watchpoint sees.

The buggy extension's touch_loop scenario (tests/fixtures/buggy/scenarios.py)
stops before a loop that increfs and decrefs the victim from C (buggy_touch)
and from Python (an alias rebound each turn; on 3.14 a borrowed load writes
nothing at all). Two runs of the same program, under the same debugger, from
that stop to the next call of buggy_refcnt (the scenario's "after" line):

- pylife: ``pylife watch VICTIM --stop-on never``, then ``pylife history``;
- bare: a hardware watchpoint on the same 8 bytes whose handler only counts
  the hits that changed the word (tests/integration/bare_watch.py).

The two counts must be equal, and at least the 2n writes buggy_touch makes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .driver import Session, run_session
from .environment import DEBUGGERS, SID_RELEASES, root_of
from .once import once, require, shared_root
from .test_watch import BUGGY, build

HERE = Path(__file__).resolve().parent
MINORS = ("3.12", *SID_RELEASES)
N = 20
# The two runs' work directories reach the program's environment (PYLIFE_SCENARIO_OUT,
# PYLIFE_LOG_DIR): names of one length keep every string, and so the victim's
# address, the same in both runs.
BARE = "barewp"
assert len(BARE) == len("pylife")
BREAK = {"gdb": "break buggy_refcnt", "lldb": "breakpoint set -n buggy_refcnt"}
LOAD = {"gdb": "python import sys; sys.path.insert(0, {here!r}); import bare_watch",
        "lldb": "script import sys; sys.path.insert(0, {here!r}); import bare_watch"}


def _run(root: Path, debugger: str, minor: str, kind: str) -> Session:
    python = require(debugger, minor)

    def make(workdir: Path) -> Session:
        ext = build(python, root / "build", root_of(python))
        out = workdir / "scenario.jsonl"
        load = LOAD[debugger].format(here=str(HERE))
        if kind == "pylife":
            commands = [("watch", "pylife watch {victim} --stop-on never --json")]
        elif debugger == "gdb":
            commands = [("bare", f"{load}; bare_watch.gdb_watch({{victim}})")]
        else:
            commands = [("bare", f"{load}; bare_watch.lldb_watch(lldb.debugger, {{victim}})")]
        commands += [("break", BREAK[debugger]), ("continue", "continue")]
        if kind == "pylife":
            commands.append(("history", "pylife history --json"))
        else:
            commands.append(("result", f"{load}; bare_watch.write({str(workdir / 'bare.json')!r})"))
        setup = ["run"] if debugger == "gdb" else ["process launch"]
        env = {"PYTHONPATH": str(ext), "PYLIFE_SCENARIO_OUT": str(out), "PYLIFE_LOG_DIR": str(workdir)}
        return run_session(debugger, "live", workdir, setup, commands,
                           program=[str(python), str(BUGGY / "scenarios.py"), "touch_loop", "--stop", "--n", str(N)],
                           truth=out, env=env)

    return once(root, f"{debugger}-{minor}-{kind}", make)


@pytest.fixture(scope="module")
def count_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_root(tmp_path_factory, "pylife-watch-count")


@pytest.mark.parametrize("debugger,minor", [pytest.param(d, m, id=f"{d}-{m}", marks=getattr(pytest.mark, d))
                                            for d in DEBUGGERS for m in MINORS])
def test_pylife_counts_what_a_bare_watchpoint_counts(count_root: Path, debugger: str, minor: str) -> None:
    recorded = _run(count_root, debugger, minor, "pylife")
    bare = _run(count_root, debugger, minor, BARE)
    assert recorded.truth and bare.truth and recorded.truth["victim"] == bare.truth["victim"], \
        "both runs must watch the same address (ASLR is off under the debugger)"
    assert bare.record("result").error is None, bare.describe()
    counted = json.loads((count_root / f"{debugger}-{minor}-{BARE}" / "bare.json").read_text())
    (history,) = recorded.json("history")["objects"]
    events = history["events"]
    assert counted["changes"] >= 2 * N, (counted, bare.describe())
    assert len(events) == counted["changes"], ([(e["old"], e["new"], e["writer"]) for e in events], counted)
    assert all(e["kind"] in ("incref", "decref") for e in events), events

