"""pylife.lifecycle: the one sequence both adapters run on their debugger's process events,
and the glibc thread-list fallback both adapters' thread_pointer share."""

from __future__ import annotations

from pathlib import Path

import pytest

from pylife import lifecycle
from pylife.glibc import ThreadPointers
from pylife.session import Session
from pylife.target import BreakHit, WatchHit

from .builders import FakePython
from .fakes import FakeTarget
from .test_recorder import watch


@pytest.fixture(autouse=True)
def _log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYLIFE_LOG_DIR", str(tmp_path))


class _Recording(FakeTarget):
    """A FakeTarget that says which process-event hooks the core called, in order."""

    def __init__(self, twin: FakeTarget) -> None:
        self.__dict__.update(twin.__dict__)
        self.calls: list[str] = []

    def remove(self, handle: int) -> None:
        self.calls.append(f"remove {handle}")
        super().remove(handle)

    def forget_process(self) -> None:
        self.calls.append("forget_process")

    def forget_symbols(self) -> None:
        self.calls.append("forget_symbols")

    def safe_point(self) -> None:
        self.calls.append("safe_point")


def test_process_gone_removes_every_handle_then_forgets_in_one_order(py: FakePython) -> None:
    target = _Recording(py.t)
    session = Session(target)
    a, b = py.int(1000, refcnt=2), py.int(1001, refcnt=2)
    _, handle_a, _ = watch(py, a, session=session)
    _, handle_b, _ = watch(py, b, session=session)
    session.runtime()
    target.calls.clear()
    lifecycle.process_gone(session)
    removes = sorted(c for c in target.calls if c.startswith("remove"))
    assert removes == sorted([f"remove {handle_a}", f"remove {handle_b}"])
    assert target.calls[len(removes):] == ["forget_process", "forget_symbols", "safe_point"]
    assert target.watchpoints == {} and session.recorder.watches == {}
    assert session._runtime is None  # learnt again from the next process


def test_modules_changed_forgets_the_runtime_and_the_symbols(py: FakePython) -> None:
    target = _Recording(py.t)
    session = Session(target)
    session.runtime()
    lifecycle.modules_changed(session)
    assert session._runtime is None and target.calls == ["forget_symbols"]


def test_a_watch_hit_stops_with_the_escaped_message_or_runs_on_silently(py: FakePython) -> None:
    session = Session(py.t)
    session.recorder.last_stop_message = "pylife: freed by \u202eevil\x1b[2J"
    stop = lifecycle.watch_hit(session, lambda hit: True, WatchHit(1, 2), 7)
    assert stop.stop and stop.message is not None
    assert "\u202e" not in stop.message and "\x1b" not in stop.message
    assert lifecycle.watch_hit(session, lambda hit: False, WatchHit(1, 2), 7) == lifecycle.HitOutcome(False, None)


def test_a_failing_watch_callback_stops_with_one_line(py: FakePython) -> None:
    def broken(hit: WatchHit) -> bool:
        raise RuntimeError("boom\nsecond line")

    stop = lifecycle.watch_hit(Session(py.t), broken, WatchHit(None, None), 3)
    assert stop.stop and stop.message is not None
    assert stop.message.startswith("pylife: watchpoint 3: internal error: RuntimeError: boom") and "\n" not in stop.message


def test_the_exit_summary_never_raises(py: FakePython, monkeypatch: pytest.MonkeyPatch) -> None:
    session = Session(py.t)
    assert lifecycle.exit_summary(session, 0) == ""  # nothing watched: nothing printed

    def broken(session: Session, status: int | None) -> str:
        raise ValueError("no history")

    monkeypatch.setattr(lifecycle, "exit_screen", broken)
    assert lifecycle.exit_summary(session, 1) == "pylife: cannot summarize at exit: ValueError: no history\n"


def test_thread_pointers_prefer_the_register_and_read_glibc_once_per_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    stop = [1]

    def table(target: object, mem: object) -> dict[int, int]:
        reads.append(stop[0])
        return {100: 0x7000, 101: 0x8000}

    monkeypatch.setattr("pylife.glibc.pthreads_by_tid", table)
    pointers = ThreadPointers(FakeTarget(), lambda: stop[0])
    assert pointers.get(100, 0x1234) == 0x1234 and reads == []  # the debugger's fs_base wins
    assert pointers.get(100, None) == 0x7000 and pointers.get(101, None) == 0x8000 and pointers.get(5, None) is None
    assert reads == [1]
    stop[0] = 2  # the program ran: threads may have come and gone
    assert pointers.get(101, None) == 0x8000 and reads == [1, 2]
    pointers.forget()
    assert pointers.get(101, None) == 0x8000 and reads == [1, 2, 2]


def test_a_failing_break_hook_stops_with_one_line_like_a_watch() -> None:
    def broken(hit: BreakHit) -> bool:
        raise KeyError("tp_name")

    hit = BreakHit(1, 0x401000, 0x7FFD0000, 0, 0)
    assert lifecycle.break_hit(lambda h: False, hit, 4) == lifecycle.HitOutcome(False, None)
    outcome = lifecycle.break_hit(broken, hit, 4)
    assert outcome == lifecycle.HitOutcome(True, "pylife: breakpoint 4: internal error: KeyError: 'tp_name'")
