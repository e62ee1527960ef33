"""The batch report (pylife.batch.report): objects, leaks, the crash's victim, the rerun, exit status."""

from __future__ import annotations

from typing import Any

import pytest

from pylife.batch import report as reports
from pylife.batch import summary
from pylife.record import events as ev
from pylife.record.events import Event, History

EXT = "buggy.cpython-312-x86_64-linux-gnu.so"
LIBPYTHON = "libpython3.12.so.1.0"
VICTIM = 0x7FFF_F737_EF90


def frame(function: str, module: str = EXT, line: int | None = 40) -> dict[str, Any]:
    return {"kind": "native", "function": function, "file": "buggy.c" if module == EXT else None,
            "line": line if module == EXT else None, "module": module}


def history(steps: list[tuple[int, str, str]], initial: int = 1, address: int = VICTIM) -> History:
    """steps: (delta or absolute for allocator writes, kind, writer)."""
    result = History(address, "__main__.Victim", initial=initial)
    count = initial
    for seq, (value, kind, writer) in enumerate(steps, 1):
        new = value if kind == ev.ALLOCATOR else count + value
        result.events.append(Event(seq, 1, count, new, kind, writer, None, "f (app.py:3)",
                                   [frame(writer, EXT if writer.startswith("buggy") else LIBPYTHON)]))
        if kind == ev.ZERO:
            result.freed_at = seq
        count = new
    return result


def crash(address: int = VICTIM, verdict: str = "FREED") -> dict[str, Any]:
    return {"kind": "use-after-free", "summary": "SIGSEGV in PyObject_Repr\nlooks like use after free",
            "signal": "SIGSEGV", "fault_address": None, "stack": [],
            "objects": [{"address": address, "verdict": verdict, "type": None, "reasons": ["0xDD fill"], "source": "v"}]}


def build(histories: list[History], result: dict[str, Any], program: list[str] | None = None) -> dict[str, Any]:
    return reports.build("run", program=program or ["python3", "app.py"], debugger="gdb", result=result,
                         histories=histories, allocations={}, environment_=None, log="/tmp/h.jsonl", failures=[],
                         interrupted=None)


def test_a_leak_is_alive_at_exit_with_its_culprit() -> None:
    leaky = history([(1, ev.INCREF, "buggy_leak"), (1, ev.INCREF, "buggy_leak"), (1, ev.INCREF, "list_append"),
                     (-1, ev.DECREF, "list_dealloc")])
    document = build([leaky], {"exit": {"code": 0, "signal": None}, "steps": []})
    (item,) = document["objects"]
    assert item["leaked"] and not item["freed"] and item["final_refcnt"] == 3 and item["events"] == 4
    assert item["balance"]["leak_candidates"][0]["function"] == "buggy_leak"
    assert document["findings"] == {"crash": False, "leaks": 1, "uses_after_free": 0}
    assert reports.exit_status(document, None) == 0
    assert reports.exit_status(document, 99) == 99
    assert "leak candidate buggy_leak" in summary.text(document)


def test_a_freed_object_is_not_leaked_and_names_its_free_site() -> None:
    clean = history([(1, ev.INCREF, "buggy_touch"), (-1, ev.DECREF, "buggy_touch"), (-1, ev.ZERO, "frame_dealloc")])
    document = build([clean], {"exit": {"code": 0, "signal": None}, "steps": []})
    (item,) = document["objects"]
    assert item["freed"] and not item["leaked"] and item["final_refcnt"] is None
    assert item["free_site"]["writer"] == "frame_dealloc"
    assert reports.exit_status(document, 99) == 0


def test_the_crash_names_the_recorded_victim_and_the_over_decref() -> None:
    freed = history([(-1, ev.ZERO, "buggy_over_decref_crash"), (0xDDDDDDDDDDDDDDDD - (1 << 64), ev.ALLOCATOR, "memset")])
    document = build([freed], {"exit": {"code": None, "signal": "SIGSEGV"}, "crash": crash(), "steps": []})
    victim = document["crash"]["victim"]
    assert victim["address"] == VICTIM and victim["type"] == "__main__.Victim"
    assert victim["free_site"]["function"] == "buggy_over_decref_crash"
    assert victim["over_decref_candidate"]["function"] == "buggy_over_decref_crash"
    assert document["crash"]["rerun"] is None
    assert document["findings"]["crash"] is True
    assert not document["objects"][0]["leaked"]  # a crash is no exit: nothing is "leaked"
    assert reports.exit_status(document, None) == 128 + 11
    assert reports.exit_status(document, 7) == 7


def test_an_unrecorded_victim_gets_the_exact_rerun_command() -> None:
    program = ["/usr/bin/python3", "app with space.py", "--n", "3"]
    document = build([], {"exit": {"code": None, "signal": "SIGSEGV"}, "crash": crash(), "steps": []}, program)
    assert document["crash"]["victim"] is None
    assert document["crash"]["rerun"] == (f"pylife run --debugger gdb --watch-address {VICTIM:#x} -- "
                                          "/usr/bin/python3 'app with space.py' --n 3")
    assert "name the victim with: pylife run" in summary.text(document)


def test_an_alive_object_of_the_crash_gets_no_rerun() -> None:
    document = build([], {"exit": {"code": None, "signal": "SIGSEGV"}, "crash": crash(verdict="ALIVE"), "steps": []})
    assert document["crash"]["rerun"] is None and document["crash"]["victim"] is None


def test_uses_after_free_are_findings() -> None:
    used = history([(-1, ev.ZERO, "list_dealloc"), (1, ev.USE_AFTER_FREE, "buggy_use_after_free")])
    document = build([used], {"exit": {"code": 0, "signal": None}, "steps": []})
    assert document["objects"][0]["uses_after_free"] == [2]
    assert document["findings"]["uses_after_free"] == 1
    assert reports.exit_status(document, 3) == 3


def test_failed_steps_are_in_the_report() -> None:
    result = {"exit": {"code": 0, "signal": None},
              "steps": [{"step": "watch-type", "ok": False, "error": "no type Victim"}, {"step": "launch", "ok": True}]}
    document = build([], result)
    assert document["failures"] == ["watch-type: no type Victim"]
    assert "failed: watch-type: no type Victim" in summary.text(document)


def test_exit_status_is_the_programs_own() -> None:
    assert reports.exit_status(build([], {"exit": {"code": 3, "signal": None}, "steps": []}), None) == 3
    assert reports.exit_status(build([], {"exit": {"code": None, "signal": "SIGKILL"}, "steps": []}), None) == 137


def test_the_schema_has_every_documented_key() -> None:
    leaky = history([(1, ev.INCREF, "buggy_leak")])
    document = build([leaky], {"exit": {"code": 0, "signal": None}, "steps": [], "python": {"version": "3.12.1"}})
    assert {"version", "program", "debugger", "python", "environment", "exit", "crash", "objects", "log"} <= set(document)
    assert document["version"] == reports.SCHEMA_VERSION and document["python"] == "3.12.1"
    assert {"address", "type", "allocated", "events", "freed", "free_site", "leaked", "final_refcnt",
            "balance"} <= set(document["objects"][0])
    assert {"leak_candidates", "over_decref_candidate"} <= set(document["objects"][0]["balance"])


def test_environment_records_what_moves_addresses() -> None:
    environment = reports.environment({"PYTHONHASHSEED": "0", "PYTHONMALLOC": "debug", "HOME": "/root"}, "/w", True)
    assert environment["variables"] == {"PYTHONHASHSEED": "0", "PYTHONMALLOC": "debug"}
    assert environment["aslr"] == "off" and environment["hashseed_set_by_pylife"] is True


def test_allocation_stacks_go_to_each_occupant_in_order() -> None:
    first, second = history([(-1, ev.ZERO, "list_dealloc")]), history([(1, ev.INCREF, "buggy_leak")])
    stack = [frame("PyType_GenericAlloc", LIBPYTHON), frame("buggy_make")]
    document = reports.build("run", program=["p"], debugger="lldb", result={"exit": {"code": 0}, "steps": []},
                             histories=[first, second], allocations={VICTIM: [None, stack]}, environment_=None,
                             log=None, failures=[], interrupted=None)
    assert [o["allocated"] for o in document["objects"]] == [None, stack]
    assert [o["freed"] for o in document["objects"]] == [True, False]


def test_a_type_watch_that_watched_nothing_is_said() -> None:
    leaky = history([(1, ev.INCREF, "buggy_leak")])
    result = {"exit": {"code": 0, "signal": None}, "steps": []}
    for name, failed in (("Victim", False), ("__main__.Victim", False), ("Vicitm", True)):
        document = reports.build("run", program=["p"], debugger="gdb", result=result, histories=[leaky], allocations={},
                                 environment_=None, log=None, failures=[], interrupted=None, watch_types=(name,))
        assert bool(document["failures"]) is failed, (name, document["failures"])


def test_a_run_ended_by_stop_on_says_so() -> None:
    result = {"exit": None, "steps": [], "stopped_by_pylife": "pylife: refcount of 0x1 reached 0"}
    document = build([], result)
    assert document["stopped_by_pylife"] and document["exit"] == {"code": None, "signal": None}
    assert "stopped by --stop-on" in summary.text(document)


def test_a_foreign_occupant_of_a_followed_address_is_neither_leaked_nor_a_count() -> None:
    # watch --address: a tuple iterator whose it_index falls on the watched word (PYTHONMALLOC=debug, 3.12).
    inside = History(VICTIM, f"{ev.FOREIGN_TYPE_PREFIX}: inside a tuple_iterator object)", initial=0, occupancy=1)
    inside.events.append(Event(1, 1, -3617008641903833651, 1, ev.WRITE, "tupleiter_next", None, None,
                               [frame("tupleiter_next", LIBPYTHON)]))
    document = build([inside], {"exit": {"code": 0, "signal": None}, "steps": []})
    (item,) = document["objects"]
    assert item["foreign"] and not item["leaked"] and item["final_refcnt"] is None
    assert document["findings"]["leaks"] == 0
    assert "not an object at this address" in summary.text(document)
    assert "refcount" not in summary.text(document).splitlines()[-1]


@pytest.mark.parametrize("shown,words", [
    ("app.py --n 3", ["app.py", "--n", "3"]),
    # the batch driver's own `set args ... < in > out 2> err`
    ("app.py x < /tmp/in > /tmp/out 2> /tmp/err", ["app.py", "x"]),
    ("app.py >>log 2>&1 <in", ["app.py"]),
    ("app.py &> all 'a b'", ["app.py", "a b"]),
    ("app.py 'unbalanced", ["app.py", "'unbalanced"]),  # a core's command line cut at 80 characters
])
def test_command_words_leave_out_the_shells_redirections(shown: str, words: list[str]) -> None:
    assert reports.command_words(shown) == words
