"""`pylife leaks` and the screen at exit, from histories recorded on a fake process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pylife.commands import execute
from pylife.commands.leaks import exit_screen
from pylife.session import Session

from .builders import FakePython
from .support import run_json
from .test_recorder import by_eval_loop, by_extension, core, float_in_pool


@pytest.fixture(autouse=True)
def _log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYLIFE_LOG_DIR", str(tmp_path))


def watched(py: FakePython, session: Session, address: int, *options: str) -> int:
    before = set(py.t.watchpoints)
    assert "error" not in run_json(py, ["watch", hex(address), *options], session)
    (handle,) = set(py.t.watchpoints) - before
    return handle


def test_nothing_watched_is_one_document_with_a_note(py: FakePython) -> None:
    data = run_json(py, ["leaks"])
    assert (data["objects"], data["watched"], data["alive"], data["uses_after_free"]) == ([], 0, 0, [])
    assert "nothing was watched" in data["notes"][0]
    assert exit_screen(Session(py.target), 0) == ""


def test_alive_with_a_leak_and_references_from_before_the_watch(py: FakePython) -> None:
    session = Session(py.target)
    obj = py.int(4242, refcnt=3)
    handle = watched(py, session, obj)
    py.t.hit(handle, 4, by_extension(py, "leak_one"))
    py.t.hit(handle, 5, by_eval_loop(py))
    py.t.hit(handle, 4, by_eval_loop(py))
    data = run_json(py, ["leaks"], session)
    (only,) = data["objects"]
    assert (only["status"], only["refcnt"], only["watched"]) == ("alive", 4, True)
    assert only["top_leak_candidate"]["function"] == "leak_one" and only["top_leak_candidate"]["unreleased"] == 1
    assert only["held_before_watch"] == 3  # the initial references: no site, still held
    assert any("3 reference(s) held since before the watch was armed" in note for note in data["notes"])
    text = execute(session, ["leaks"])
    assert text.startswith("pylife leaks now: 1 objects watched: 1 alive, 0 freed, 0 uses after free")
    assert f"{obj:#x} int: refcount 4; top leak candidate leak_one" in text and "unreleased references by site" in text


def test_a_leak_from_before_the_watch_is_alive_at_exit(py: FakePython) -> None:
    """Never only "no site holds unreleased increments": the object is alive, with its count."""
    session = Session(py.target)
    obj = py.int(4243, refcnt=2)  # one leaked reference taken before the watch
    handle = watched(py, session, obj)
    py.t.hit(handle, 1, by_eval_loop(py))
    screen = exit_screen(session, 0)
    assert screen.startswith("pylife leaks at exit (exit status 0): 1 objects watched: 1 alive, 0 freed")
    assert f"{obj:#x} int: refcount 1; 1 reference(s) held since before the watch was armed" in screen
    summary = session.recorder.exit_summary
    assert summary is not None and summary["at_exit"] is True and summary["objects"][0]["status"] == "alive"
    # After the process is gone, `pylife leaks` is that screen's data.
    session.recorder.forget_process()
    assert run_json(py, ["leaks"], session) == json.loads(json.dumps(summary))
    # A new process: its own summary.
    handle = watched(py, session, py.int(4244, refcnt=1))
    assert run_json(py, ["leaks"], session)["at_exit"] is False


def test_freed_objects_name_their_free_site_and_uses_after_free(py: FakePython) -> None:
    session = Session(py.target)
    obj, pool = float_in_pool(py, refcnt=1)
    handle = watched(py, session, obj)
    py.t.hit(handle, 0, by_extension(py, "over_decref"))
    pool.free(obj)
    link = py.t.peek_u64(obj)
    py.t.hit(handle, link, [core(py, "pymalloc_free")])
    py.t.hit(handle, link + 1, by_extension(py, "use_stale"))
    data = run_json(py, ["leaks"], session)
    (only,) = data["objects"]
    assert (only["status"], only["refcnt"], only["freed_at"]) == ("freed", None, 1)
    assert only["free_site"] == {"seq": 1, "writer": "over_decref", "python": None}
    assert [(u["writer"], u["kind"], u["address"]) for u in data["uses_after_free"]] == [
        ("use_stale", "use-after-free", obj)]
    text = execute(session, ["leaks"])
    assert f"{obj:#x} float: freed at event 1 by over_decref" in text and "uses after free:" in text


def test_unwatched_objects_say_so(py: FakePython) -> None:
    session = Session(py.target)
    obj = py.int(4245, refcnt=2)
    watched(py, session, obj)
    execute(session, ["unwatch", hex(obj)])
    (only,) = run_json(py, ["leaks"], session)["objects"]
    assert (only["status"], only["refcnt"], only["watched"]) == ("unwatched", 2, False)


def test_leaks_from_a_log(py: FakePython) -> None:
    session = Session(py.target)
    obj = py.int(4246, refcnt=1)
    handle = watched(py, session, obj)
    py.t.hit(handle, 2, by_extension(py, "leak_one"))
    data = run_json(py, ["leaks", "--load", session.recorder.log.path], Session(py.target))
    (only,) = data["objects"]
    assert (only["status"], only["refcnt"], only["top_leak_candidate"]["function"]) == ("alive", 2, "leak_one")
