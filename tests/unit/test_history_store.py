"""The JSONL history log (pylife.record.store) and `pylife history` over it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pylife.commands import CommandFailed, execute
from pylife.errors import UserError
from pylife.record import events as ev
from pylife.record import store
from pylife.record.events import Event, History
from pylife.record.store import JsonlLog
from pylife.session import Session

from .builders import FakePython
from .support import run_json
from .test_recorder import by_eval_loop, by_extension, core, float_in_pool, watch

STACK = [
    {"kind": "native", "function": "Py_INCREF", "file": "buggy.c", "line": 42, "module": "buggy.so"},
    {"kind": "native", "function": "leak_one", "file": "buggy.c", "line": 42, "module": "buggy.so"},
    {"kind": "python", "function": "f", "file": "/src/app.py", "line": 12, "module": None},
    {"kind": "native", "function": "_PyEval_EvalFrameDefault", "file": None, "line": None,
     "module": "libpython3.12.so.1.0", "note": "running g at app.py:3"},
]


@pytest.fixture(autouse=True)
def _log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYLIFE_LOG_DIR", str(tmp_path))


def sample_histories() -> list[History]:
    a = History(0x7F40_0000_1000, "int", initial=2)
    a.events = [
        Event(1, 11, 2, 3, ev.INCREF, "leak_one", None, "f (/src/app.py:12)", list(STACK)),
        Event(3, 11, 3, 2, ev.DECREF, "_PyEval_EvalFrameDefault", "LOAD_FAST", "f (/src/app.py:13)", []),
    ]
    b = History(0x7F40_0000_2000, "mod.Foo", initial=1)
    b.events = [
        Event(2, 12, 1, 0, ev.ZERO, "over_decref", "DELETE_FAST", None, list(STACK),
              release={"op": "DELETE_FAST", "local": "db", "call_line": 11, "callee": "ext.get", "function": "get",
                       "module": "/x/ext.so", "watched_before_call": True}),
        Event(4, 12, 0, 0x7F40_0000_3000, ev.ALLOCATOR, "pymalloc_free", None, None, []),
        Event(5, 12, 0x7F40_0000_3000, 0x7F40_0000_3001, ev.USE_AFTER_FREE, "use_stale", None, None, list(STACK),
              "use after free: use_stale wrote ..."),
        Event(6, 12, 0x7F40_0000_3001, 1, ev.REUSE, "PyFloat_FromDouble", None, None, [],
              "memory reused by a new float object at event 6"),
    ]
    b.freed_at = 2
    b.closed = "memory reused by a new float object at event 6"
    return [a, b]


def write_log(path: Path, histories: list[History], *, hot_path: bool = False) -> None:
    """As the recorder writes: watch records, events in seq order (interleaved), close records."""
    log = JsonlLog(str(path))
    for history in histories:
        log.watch(history)
    events = sorted(((e, h) for h in histories for e in h.events), key=lambda pair: pair[0].seq)
    for event, history in events:
        text = json.dumps(event.stack, separators=(",", ":")) if hot_path else None
        log.event(history, event, text)
    for history in histories:
        if history.closed:
            log.close(history)


@pytest.mark.parametrize("hot_path", [False, True], ids=["plain", "pre-encoded-stack"])
def test_round_trip(tmp_path: Path, hot_path: bool) -> None:
    path = tmp_path / "h.jsonl"
    histories = sample_histories()
    write_log(path, histories, hot_path=hot_path)
    assert [h.to_json() for h in store.load(str(path))] == [h.to_json() for h in histories]
    # One JSON object per line, records in order.
    records = [json.loads(line)["record"] for line in path.read_text().splitlines()]
    assert records == ["watch", "watch"] + ["event"] * 6 + ["close"]


def test_hot_path_event_line_parses_to_event_to_json(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    history = sample_histories()[1]
    event = history.events[2]
    log = JsonlLog(str(path))
    log.event(history, event, json.dumps(event.stack, separators=(",", ":")))
    log.event(history, event)
    hot, plain = (json.loads(line) for line in path.read_text().splitlines())
    assert hot == plain == {"record": "event", **event.to_json(history.address), "occupancy": history.occupancy}
    assert Event.from_json(hot) == event


def test_event_json_shape() -> None:
    event = sample_histories()[0].events[0]
    assert list(event.to_json()) == ["seq", "tid", "old", "new", "kind", "writer", "op", "python", "stack", "message"]
    assert next(iter(event.to_json(5))) == "address" and event.to_json(5)["address"] == 5
    assert Event.from_json(event.to_json(5)) == event
    assert set(sample_histories()[0].to_json()) == {"address", "occupancy", "type", "initial", "allocated_at", "events",
                                                    "freed_at", "closed"}


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    histories = sample_histories()
    write_log(path, histories)
    whole = [h.to_json() for h in store.load(str(path))]
    with path.open("a") as out:
        out.write('{"record":"event","address":1234,"seq":7,"tid":1,"ol')  # the debugger died mid-write
    assert [h.to_json() for h in store.load(str(path))] == whole


def test_log_without_close_records_still_knows_the_free(tmp_path: Path) -> None:
    """The debugger died after the free: no close record, freed_at comes from the zero event."""
    path = tmp_path / "h.jsonl"
    history = sample_histories()[1]
    history.events = history.events[:3]
    history.closed = None
    write_log(path, [history])
    (loaded,) = store.load(str(path))
    assert (loaded.freed_at, loaded.closed) == (2, None)


def test_address_watched_again_gets_a_new_history(tmp_path: Path) -> None:
    """E.g. the same address in the next `run`: two histories, as the session had."""
    path = tmp_path / "h.jsonl"
    first = History(0x7F40_0000_1000, "int", initial=1)
    first.events = [Event(1, 1, 1, 0, ev.ZERO, "drop", None, None)]
    first.freed_at, first.closed = 1, "the process exited"
    second = History(0x7F40_0000_1000, "str", initial=3)
    second.events = [Event(2, 1, 3, 4, ev.INCREF, "take", None, None)]
    write_log(path, [first])
    write_log(path, [second])  # e.g. two debugger sessions appending to one --log: both say occupancy 0
    loaded = store.load(str(path))
    assert [h.occupancy for h in loaded] == [0, 1]  # (address, occupancy) stays a key
    second.occupancy = 1
    assert [h.to_json() for h in loaded] == [first.to_json(), second.to_json()]


@pytest.mark.parametrize("bad", ["not json at all", '{"record": "event"}', "[1, 2]", '{"address": 5}',
                                 '{"record": "event", "address": 5, "seq": 9}'])
def test_corrupt_middle_line_is_a_one_line_user_error(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "h.jsonl"
    write_log(path, sample_histories())
    lines = path.read_text().splitlines()
    lines.insert(3, bad)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError) as caught:
        store.load(str(path))
    assert str(caught.value) == f"{path}:4: not a pylife history record"


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    write_log(path, sample_histories())
    path.write_text(path.read_text().replace("\n", "\n\n", 2))
    assert len(store.load(str(path))) == 2


def test_unreadable_files_are_user_errors(tmp_path: Path) -> None:
    binary = tmp_path / "core.bin"
    binary.write_bytes(b"\x7fELF\xff\xfe\x00\x80" * 10)
    for path in (tmp_path / "missing.jsonl", tmp_path, binary):
        with pytest.raises(UserError) as caught:
            store.load(str(path))
        message = str(caught.value)
        assert message.startswith(f"cannot read {path}") and "\n" not in message


def test_empty_log_has_no_history(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    assert store.load(str(path)) == []


# ---- `pylife history` --------------------------------------------------------------------------


def _recorded(py: FakePython) -> tuple[Session, int, int]:
    """Two watched objects: an int that is increfed, and a float freed then used after free."""
    obj, pool = float_in_pool(py, refcnt=2)
    session, handle, _ = watch(py, obj)
    other = py.int(77, refcnt=5)
    _session, other_handle, _ = watch(py, other, session=session)
    py.t.hit(handle, 1, by_eval_loop(py))
    py.t.hit(other_handle, 6, by_extension(py, "leak_one"))
    py.t.hit(handle, 0, by_extension(py, "over_decref"))
    pool.free(obj)
    py.t.hit(handle, py.t.peek_u64(obj), [core(py, "pymalloc_free")])
    py.t.hit(handle, py.t.peek_u64(obj) + 1, by_extension(py, "use_stale"))
    return session, obj, other


def _objects(output: str) -> list[dict]:
    """The JSON contract: one line, one document; several objects under "objects"."""
    assert output.endswith("\n") and output.count("\n") == 1, output
    document = json.loads(output)
    assert list(document) == ["objects"], document
    return document["objects"]


def test_history_json_is_one_document(py: FakePython) -> None:
    session, obj, other = _recorded(py)
    histories = _objects(execute(session, ["history", "--json"]))
    assert [h["address"] for h in histories] == [obj, other]
    assert all("culprit" in e for e in histories[0]["events"])  # derived from each event's stack
    assert _without_culprits(histories[0]) == session.recorder.history_of(obj).to_json()
    assert [e["kind"] for e in histories[0]["events"]] == [ev.DECREF, ev.ZERO, ev.ALLOCATOR, ev.USE_AFTER_FREE]
    assert histories[0]["freed_at"] == 3 and histories[0]["closed"] is None
    only = _objects(execute(session, ["history", hex(other), "--json"]))
    assert len(only) == 1 and only[0]["address"] == other and [e["seq"] for e in only[0]["events"]] == [2]
    assert set(run_json(py, ["history", "0x1000"], session)) == {"error"}


def test_history_full_is_one_line(py: FakePython) -> None:
    session, obj, _other = _recorded(py)
    data = run_json(py, ["history", "--full", "3"], session)
    event = session.recorder.history_of(obj).events[1]
    assert data == {"address": obj, "type": "float", **event.to_json(), "culprit": event.culprit}
    assert data["kind"] == ev.ZERO and data["writer"] == "over_decref" and data["stack"]
    assert set(run_json(py, ["history", "--full", "99"], session)) == {"error"}
    text = execute(session, ["history", "--full", "3"])
    assert "over_decref" in text and "stack:" in text


def test_history_text(py: FakePython) -> None:
    session, obj, _other = _recorded(py)
    text = execute(session, ["history"])
    assert f"{obj:#x} float: 4 events (initial refcount 2); freed at event 3" in text
    assert "use_stale" in text and "use-after-free" in text
    assert execute(Session(py.target), ["history"]).startswith("pylife: no history recorded")


def test_history_load_through_execute(py: FakePython) -> None:
    session, obj, other = _recorded(py)
    log = session.recorder.log.path
    fresh = Session(py.target)  # another debugger session: nothing recorded, the log is enough
    loaded = _objects(execute(fresh, ["history", "--load", log, "--json"]))
    assert [_without_culprits(h) for h in loaded] == [h.to_json() for h in session.recorder.histories.values()]
    assert [h["address"] for h in loaded] == [obj, other]
    assert run_json(py, ["history", "--load", log, "--full", "5"], fresh)["kind"] == ev.USE_AFTER_FREE
    balance = _objects(execute(fresh, ["history", "--load", log, "--balance", "--json"]))
    assert [b["address"] for b in balance] == [obj, other]
    with pytest.raises(CommandFailed) as caught:
        execute(fresh, ["history", "--load", log + ".missing"])
    assert str(caught.value).startswith("pylife: cannot read ") and "\n" not in str(caught.value)


def test_history_clear_keeps_watched_objects(py: FakePython) -> None:
    session, obj, other = _recorded(py)
    execute(session, ["unwatch", hex(other)])
    assert "cleared" in execute(session, ["history", "--clear"])
    assert list(session.recorder.histories) == [(obj, 0)]


def _without_culprits(history: dict) -> dict:
    return {**history, "events": [{k: v for k, v in e.items() if k != "culprit"} for e in history["events"]]}
