"""`pylife bt` in real gdb and lldb-16 x CPython 3.8-3.13 x live and core.

The fixture (tests/fixtures/bt_fixture.py) stops inside
sorted(key=...) -> generator -> __eq__ called by C -> map() -> stop_here, with
three more threads (asleep, busy, asleep at the bottom of a 500-deep
recursion). Its truth gives each thread's native id and expected Python
frames; the same expectations hold for both debuggers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .driver import Session
from .environment import REPO_ROOT
from .once import core_session, live_session, once, require, shared_root
from .params import SESSION_ARGS, sessions

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "bt_fixture.py"
COMMANDS = [
    ("all", "pylife bt --all --json"),
    ("current", "pylife bt --json"),
    ("python", "pylife bt --all --python --json"),
    ("native", "pylife bt --native --json"),
    ("limit", "pylife bt --all --limit 5 --json"),
    ("text", "pylife bt --all"),
    ("text_no_source", "pylife bt --no-source"),
    ("bad_limit", "pylife bt --limit -1"),
    ("watch", "pylife watch {victim}"),  # live: a watch is set; core: refused
]


def _make(debugger: str, minor: str, mode: str, root: Path) -> Session:
    python = str(require(debugger, minor))
    if mode == "live":
        def live(workdir: Path) -> Session:
            truth = workdir / "truth.json"
            return live_session(debugger, workdir, list(COMMANDS), [python, str(FIXTURE), str(truth)], truth)
        return once(root, f"{debugger}-{minor}-live", live)
    # lldb-16 cannot write ELF cores: both debuggers open the core gdb's gcore wrote.
    origin = _make("gdb", minor, "live", root)
    return core_session(root, f"{debugger}-{minor}-core", debugger, python, origin, COMMANDS)


@pytest.fixture(scope="module")
def bt_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_root(tmp_path_factory, "pylife-bt")


def _python_frames(thread: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in thread["frames"] if f["kind"] == "python"]


def _thread(data: dict[str, Any], tid: int) -> dict[str, Any]:
    matches = [t for t in data["threads"] if t["tid"] == tid]
    assert len(matches) == 1, f"thread {tid} not found once in {[t['tid'] for t in data['threads']]}"
    return matches[0]


def _check_python(frames: list[dict[str, Any]], expected: list[list[Any]], fixture: str) -> None:
    assert len(frames) >= len(expected), [f["function"] for f in frames]
    for got, (name, line) in zip(frames, expected):
        # co_qualname from 3.11 ("Eq.__eq__"), co_name before ("__eq__").
        assert got["function"].split(".")[-1] == name, (got, name)
        assert got["line"] in (line if isinstance(line, list) else [line]), (got, name, line)
        if name in ("stop_here", "__eq__", "gen", "keyf", "main", "sleeper", "busy", "deep"):
            assert got["file"] == fixture, (got, fixture)


@pytest.mark.parametrize(SESSION_ARGS, sessions())
def test_all_threads_merged(bt_root: Path, debugger: str, minor: str, mode: str) -> None:
    session = _make(debugger, minor, mode, bt_root)
    truth = session.truth
    assert truth is not None, session.describe()
    data = session.json("all")
    assert set(data) >= {"threads"}
    for name in ("main", "sleeper", "busy", "deep"):
        thread = _thread(data, truth[name]["tid"])
        assert set(thread) >= {"tid", "name", "holds_gil", "frames"}
        assert thread["holds_gil"] is (name == "main"), (name, thread["holds_gil"])
        for frame in thread["frames"]:
            assert set(frame) >= {"kind", "function", "file", "line", "module"}
            assert frame["kind"] in ("python", "native")
        _check_python(_python_frames(thread), truth[name]["python"], str(FIXTURE))
    assert sum(t["holds_gil"] for t in data["threads"]) == 1


@pytest.mark.parametrize(SESSION_ARGS, sessions())
def test_c_functions_between_python_frames(bt_root: Path, debugger: str, minor: str, mode: str) -> None:
    session = _make(debugger, minor, mode, bt_root)
    truth = session.truth
    assert truth is not None
    main = _thread(session.json("all"), truth["main"]["tid"])
    frames = main["frames"]
    python_positions = [i for i, f in enumerate(frames) if f["kind"] == "python"]
    assert frames[0]["kind"] == "native", "the innermost frame is the C function that stopped (kill)"
    for index, wanted in enumerate(truth["main"]["between"]):
        if not wanted:
            continue
        start, end = python_positions[index], python_positions[index + 1]
        between = [f["function"] for f in frames[start + 1:end]]
        assert any(any(w in name for w in wanted) for name in between), (index, wanted, between)
    # No eval-loop frame is left in the merged stack where it ran Python frames.
    assert not any(f["function"] == "_PyEval_EvalFrameDefault" for f in frames[:python_positions[-1]])


@pytest.mark.parametrize(SESSION_ARGS, sessions())
def test_modes_and_limits(bt_root: Path, debugger: str, minor: str, mode: str) -> None:
    session = _make(debugger, minor, mode, bt_root)
    truth = session.truth
    assert truth is not None
    current = session.json("current")
    assert [t["tid"] for t in current["threads"]] == [truth["main"]["tid"]]
    python_only = session.json("python")
    for thread in python_only["threads"]:
        assert all(f["kind"] == "python" for f in thread["frames"])
    deep = _thread(python_only, truth["deep"]["tid"])
    assert len(deep["frames"]) >= 501
    native = session.json("native")["threads"][0]["frames"]
    assert all(f["kind"] == "native" for f in native)
    evals = [f for f in native if f["function"] == "_PyEval_EvalFrameDefault"]
    assert evals and any("stop_here" in (f.get("note") or "") for f in evals)
    for thread in session.json("limit")["threads"]:
        assert len(thread["frames"]) <= 5
    text = session.record("text").output
    assert "holds the GIL" in text and "stop_here" in text and "# STOP" in text
    assert "# STOP" not in session.record("text_no_source").output
    bad = session.record("bad_limit")
    assert bad.error and "--limit" in bad.error and "\n" not in bad.error.strip()
    assert "Traceback" not in session.transcript and "Python Exception" not in session.transcript


@pytest.mark.parametrize(SESSION_ARGS, sessions())
def test_watch_is_refused_on_a_core(bt_root: Path, debugger: str, minor: str, mode: str) -> None:
    session = _make(debugger, minor, mode, bt_root)
    record = session.record("watch")
    if mode == "core":
        assert record.error and "core" in record.error and "\n" not in record.error.strip(), record
    else:
        assert record.error is None and "watching" in record.output, record
