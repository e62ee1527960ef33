"""Balance analysis (pylife.record.balance): sites, leak candidates, the over-decref candidate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pylife.commands import execute
from pylife.record import events as ev
from pylife.record.balance import analyze, site_of
from pylife.record.events import Event, History

from .builders import FakePython
from .test_recorder import PYTHON_TID, by_eval_loop, by_extension, core, ext, float_in_pool, python_thread, watch

LIBPYTHON = "libpython3.12.so.1.0"
EXT = "buggy.cpython-312-x86_64-linux-gnu.so"
CANDIDATE_KEYS = {"function", "callers", "file", "line", "python", "increments", "decrements", "unreleased", "events", "culprit"}


@pytest.fixture(autouse=True)
def _log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYLIFE_LOG_DIR", str(tmp_path))


def c(function: str, module: str = LIBPYTHON, line: int | None = None) -> dict[str, Any]:
    return {"kind": "native", "function": function, "file": "buggy.c" if module == EXT else None, "line": line,
            "module": module}


def x(function: str, line: int = 40) -> dict[str, Any]:
    return c(function, EXT, line)


def p(function: str, line: int, file: str = "/src/app.py") -> dict[str, Any]:
    return {"kind": "python", "function": function, "file": file, "line": line, "module": None}


CORE_ONLY = [c("Py_INCREF"), c("dict_merge"), c("PyDict_Update"), c("main", "python3.12")]
PYTHON_LINE = [c("Py_INCREF"), p("f", 12), c("PyEval_EvalCode"), p("<module>", 3)]
EXTENSION = [x("Py_INCREF"), x("leak_one"), c("cfunction_vectorcall_O"), p("f", 20), p("<module>", 3)]
VIA_ITER = [c("listiter_next"), c("PyIter_Next"), x("leak_via_iter", 55), c("cfunction_call"), p("g", 7)]


class Recording:
    """Builds a History event by event, counts as the recorder would."""

    def __init__(self, initial: int = 1, type_name: str = "int") -> None:
        self.history = History(0x7F40_0000_1000, type_name, initial=initial)
        self.count = initial

    def add(self, delta: int, stack: list[dict[str, Any]], kind: str | None = None) -> Event:
        old, new = self.count, self.count + delta
        if kind is None:
            kind = ev.ZERO if new == 0 else ev.INCREF if delta > 0 else ev.DECREF
        function = next((f["function"] for f in stack if f["function"] not in ("Py_INCREF", "Py_DECREF")), None)
        python = next((f"{f['function']} ({f['file']}:{f['line']})" for f in stack if f["kind"] == "python"), None)
        event = Event(len(self.history.events) + 1, 1, old, new, kind, function, None, python, stack)
        self.history.events.append(event)
        self.count = new
        if kind == ev.ZERO:
            self.history.freed_at = event.seq
        return event


def test_site_is_the_first_frame_outside_the_core() -> None:
    assert site_of(EXTENSION) == ("leak_one", "buggy.c", 40, ["leak_one"], False)
    assert site_of(PYTHON_LINE) == ("f", "/src/app.py", 12, ["f"], False)
    assert site_of(CORE_ONLY) == ("dict_merge", None, None, ["dict_merge"], True)
    assert site_of([c("Py_DECREF")]) == ("?", None, None, [], True)


def test_an_incref_made_by_pyiter_next_is_charged_to_the_extension_caller() -> None:
    function, file, line, chain, in_core = site_of(VIA_ITER)
    assert (function, file, line, in_core) == ("leak_via_iter", "buggy.c", 55, False)
    assert chain == ["listiter_next", "PyIter_Next", "leak_via_iter"]
    # Py_NewRef inlined into the extension is a helper, not the site.
    assert site_of([x("Py_NewRef"), x("keep_ref", 60), p("f", 1)])[:4] == ("keep_ref", "buggy.c", 60, ["keep_ref"])


def test_leak_candidates_rank_extension_then_python_then_core() -> None:
    rec = Recording(initial=1)
    for _ in range(3):
        rec.add(+1, CORE_ONLY)
    for _ in range(2):
        rec.add(+1, PYTHON_LINE)
    rec.add(+1, EXTENSION)
    rec.add(+1, VIA_ITER)
    rec.add(+1, VIA_ITER)
    result = analyze(rec.history)
    assert set(result) == {"address", "type", "leak_candidates", "overdecref_candidate", "notes"}
    leaks = result["leak_candidates"]
    assert [(s["function"], s["unreleased"]) for s in leaks] == [
        ("leak_via_iter", 2), ("leak_one", 1), ("f", 2), ("dict_merge", 3)]
    assert all(set(s) == CANDIDATE_KEYS for s in leaks)
    assert leaks[0]["callers"] == ["listiter_next", "PyIter_Next", "leak_via_iter"]
    assert (leaks[0]["file"], leaks[0]["line"], leaks[0]["python"]) == ("buggy.c", 55, "g (/src/app.py:7)")
    assert leaks[0]["events"] == [7, 8]
    assert result["overdecref_candidate"] is None
    assert any("references held before the watch started (1)" in n for n in result["notes"])
    assert any("leak candidate is a site" in n for n in result["notes"])


def test_released_increments_are_not_leaks() -> None:
    rec = Recording(initial=2)
    rec.add(+1, EXTENSION)
    rec.add(-1, EXTENSION)
    rec.add(+1, PYTHON_LINE)
    rec.add(-1, PYTHON_LINE)
    result = analyze(rec.history)
    assert result["leak_candidates"] == [] and result["overdecref_candidate"] is None
    assert any("No site holds unreleased increments" in n for n in result["notes"])


def test_extension_named_like_its_python_caller_is_still_an_extension_site() -> None:
    """`def leak(x): _ext.leak(x)`: the C function is the site, ranked before Python lines."""
    same_name = [x("leak"), c("cfunction_vectorcall_O"), p("leak", 5), p("<module>", 3)]
    rec = Recording()
    rec.add(+1, PYTHON_LINE)
    rec.add(+1, PYTHON_LINE)
    rec.add(+1, same_name)
    leaks = analyze(rec.history)["leak_candidates"]
    assert [(s["function"], s["file"]) for s in leaks] == [("leak", "buggy.c"), ("f", "/src/app.py")]


def test_free_without_later_use_has_no_overdecref_candidate() -> None:
    rec = Recording(initial=2)
    rec.add(-1, PYTHON_LINE)
    rec.add(-1, EXTENSION)
    result = analyze(rec.history)
    assert result["overdecref_candidate"] is None
    assert any("freed at event 2; no later use was recorded" in n for n in result["notes"])


@pytest.mark.parametrize("after", [ev.USE_AFTER_FREE, ev.DECREF_AFTER_FREE])
def test_use_after_the_free_names_the_overdecref_candidate(after: str) -> None:
    rec = Recording(initial=2)
    rec.add(+1, PYTHON_LINE)
    rec.add(-1, PYTHON_LINE)
    rec.add(-1, [c("Py_DECREF"), p("h", 30), p("<module>", 4)])
    rec.add(-1, [x("Py_DECREF"), x("over_decref", 77), c("cfunction_call"), p("g", 9)])  # -> 0
    assert rec.history.freed_at == 4
    rec.add(0x1000, [c("pymalloc_free")], kind=ev.ALLOCATOR)
    if after == ev.DECREF_AFTER_FREE:  # the list that still held it lets it go
        rec.add(-1, [c("Py_DECREF"), c("list_dealloc"), c("_Py_Dealloc"), p("<module>", 5)], kind=after)
    else:
        rec.add(+1, [x("Py_INCREF"), x("use_stale", 90), c("cfunction_call"), p("<module>", 5)], kind=after)
    result = analyze(rec.history)
    over = result["overdecref_candidate"]
    assert set(over) == CANDIDATE_KEYS
    # Extension sites first among those with more decrements than increments.
    assert (over["function"], over["file"], over["line"]) == ("over_decref", "buggy.c", 77)
    assert (over["increments"], over["decrements"]) == (0, 1)
    assert any(f"freed at event 4 while references were still in use: event 6 ({after})" in n
               for n in result["notes"])


def test_overdecref_falls_back_to_the_site_of_the_zero() -> None:
    rec = Recording(initial=1)
    rec.add(+1, CORE_ONLY)
    rec.add(-1, CORE_ONLY)
    rec.add(-1, CORE_ONLY)  # the history shows no site with more decrements than increments except this one
    rec.add(+1, [x("Py_INCREF"), x("use_stale")], kind=ev.USE_AFTER_FREE)
    over = analyze(rec.history)["overdecref_candidate"]
    assert over is not None and over["function"] == "dict_merge"


def test_empty_history() -> None:
    result = analyze(History(0x10, "int", initial=None))
    assert (result["leak_candidates"], result["overdecref_candidate"]) == ([], None)
    assert "(?)" in result["notes"][0]


# ---- `pylife history --balance` ---------------------------------------------------------------


def _objects(output: str) -> list[dict[str, Any]]:
    """The JSON contract: one line, one document; several objects under "objects"."""
    assert output.endswith("\n") and output.count("\n") == 1, output
    document = json.loads(output)
    assert list(document) == ["objects"], document
    return document["objects"]


def test_balance_json_is_one_document_and_names_the_culprits(py: FakePython) -> None:
    python_thread(py)
    victim, pool = float_in_pool(py, refcnt=2)
    session, handle, _ = watch(py, victim)
    leaked = py.int(1234, refcnt=1)
    _session, leak_handle, _ = watch(py, leaked, session=session)
    # The leak: two increfs by the extension, one released by the eval loop.
    py.t.hit(leak_handle, 2, by_extension(py, "leak_one"), tid=PYTHON_TID)
    py.t.hit(leak_handle, 3, by_extension(py, "leak_one"), tid=PYTHON_TID)
    py.t.hit(leak_handle, 2, by_eval_loop(py), tid=PYTHON_TID)
    py.t.hit(leak_handle, 3, [core(py, "listiter_next"), core(py, "PyIter_Next"), ext("leak_via_iter"),
                              core(py, "cfunction_call")], tid=PYTHON_TID)
    # The over-decref: the extension drops a reference it does not own, then it is used.
    py.t.hit(handle, 1, by_eval_loop(py), tid=PYTHON_TID)
    py.t.hit(handle, 0, by_extension(py, "over_decref"), tid=PYTHON_TID)
    pool.free(victim)
    py.t.hit(handle, py.t.peek_u64(victim), [core(py, "pymalloc_free")], tid=PYTHON_TID)
    py.t.hit(handle, py.t.peek_u64(victim) + 1, by_extension(py, "use_stale"), tid=PYTHON_TID)

    analyses = _objects(execute(session, ["history", "--balance", "--json"]))
    assert [a["address"] for a in analyses] == [victim, leaked]
    over, leak = analyses
    assert over["type"] == "float" and over["overdecref_candidate"]["function"] == "over_decref"
    assert over["overdecref_candidate"]["callers"] == ["over_decref"]
    # Both extension sites; more unreleased references first.
    assert [(s["function"], s["unreleased"]) for s in leak["leak_candidates"]] == [("leak_one", 2), ("leak_via_iter", 1)]
    by_name = {s["function"]: s for s in leak["leak_candidates"]}
    assert by_name["leak_via_iter"]["callers"] == ["listiter_next", "PyIter_Next", "leak_via_iter"]
    assert by_name["leak_one"]["python"] == "f (/src/app.py:12)"
    assert leak["overdecref_candidate"] is None and leak["notes"]
    # The Python line that released one reference is no candidate.
    assert "f" not in by_name

    only = _objects(execute(session, ["history", hex(leaked), "--balance", "--json"]))
    assert only == [leak]
    text = execute(session, ["history", "--balance"])
    assert "leak candidates" in text and "over-decref candidate: over_decref" in text and "note: " in text
    assert "listiter_next <- PyIter_Next <- leak_via_iter" in text


# ---- ownership handed from Python to C (issue 10) ------------------------------------

CALLBACK_RETURN = [c("Py_INCREF"), p("<lambda>", 30), c("_PyFunction_Vectorcall"), c("PyObject_CallObject"),
                   x("keep_result", 77), c("cfunction_vectorcall_O"), p("scenario", 31)]
GENERATOR_YIELD = [c("Py_INCREF"), p("gen", 5), c("gen_send_ex2"), c("PyIter_Next"), x("consume", 90),
                   c("cfunction_vectorcall_O"), p("main", 9)]
PYTHON_CALLER = [c("Py_INCREF"), p("helper", 40), p("caller", 41), c("PyEval_EvalCode")]


@pytest.mark.parametrize("stack,owner", [(CALLBACK_RETURN, "keep_result"), (GENERATOR_YIELD, "consume")],
                         ids=["callback", "generator"])
def test_a_reference_returned_to_a_c_caller_is_charged_to_it(stack: list[dict[str, Any]], owner: str) -> None:
    rec = Recording(initial=1)
    for _ in range(3):
        rec.add(+1, stack)
    rec.add(+1, PYTHON_LINE)  # a Python-level leak elsewhere ranks after the C owner
    rec.add(-1, PYTHON_LINE)
    result = analyze(rec.history)
    top = result["leak_candidates"][0]
    assert (top["function"], top["unreleased"], top["file"], top["line"]) == (owner, 3, "buggy.c", 77 if owner == "keep_result" else 90)
    assert top["culprit"]["function"] == owner
    assert all(s["function"] not in ("<lambda>", "gen") for s in result["leak_candidates"])
    assert any(f"charged to {owner}" in n and "returned by the Python function" in n for n in result["notes"])


def test_a_reference_returned_to_a_python_caller_stays_with_python() -> None:
    rec = Recording(initial=1)
    rec.add(+1, PYTHON_CALLER)
    result = analyze(rec.history)
    assert [s["function"] for s in result["leak_candidates"]] == ["helper"]
    assert not any("returned by the Python function" in n for n in result["notes"])


def test_freed_while_still_referenced_is_noted() -> None:
    rec = Recording(initial=1)
    zero = rec.add(-1, PYTHON_LINE)
    zero.message = "freed while dict 0x7f0000001000 (key 'db') still points to it"
    result = analyze(rec.history)
    assert any("dict 0x7f0000001000 (key 'db')" in n and "never counted" in n for n in result["notes"])


def test_a_function_that_increfs_on_one_line_and_decrefs_on_the_next_is_balanced() -> None:
    # buggy_touch: Py_INCREF(o) on one line, Py_DECREF(o) on the next, three times.
    rec = Recording(initial=1)
    for _ in range(3):
        rec.add(+1, [x("Py_INCREF"), x("touch", 547), c("cfunction_vectorcall_O"), p("f", 20)])
        rec.add(-1, [x("Py_DECREF"), x("touch", 548), c("cfunction_vectorcall_O"), p("f", 20)])
    balance = analyze(rec.history)
    assert balance["leak_candidates"] == []
    # A real leak in the same function is still one site, shown at its first line.
    rec.add(+1, [x("Py_INCREF"), x("touch", 547), c("cfunction_vectorcall_O"), p("f", 21)])
    (candidate,) = analyze(rec.history)["leak_candidates"]
    assert (candidate["function"], candidate["line"], candidate["unreleased"]) == ("touch", 547, 1)


# ---- a borrowed reference returned as new (issue 10, point 7) ---------------------------------

RELEASE = {"op": "DELETE_FAST", "local": "db", "call_line": 11, "callee": "ext.get_borrowed", "function": "get_borrowed",
           "module": EXT, "watched_before_call": True}
DEL_DB = [c("_PyEval_EvalFrameDefault"), p("scenario", 12), p("<module>", 3)]


def _released_by_the_interpreter(release: dict[str, Any] | None, before: list[list[dict[str, Any]]] = ()) -> History:
    """A history whose object was freed by the interpreter's DELETE_FAST of a call's result."""
    rec = Recording(initial=1 + len(before))
    for stack in before:  # decrements balancing references held before the watch
        rec.add(-1, stack)
    zero = rec.add(-1, DEL_DB)
    zero.op, zero.release = "DELETE_FAST", release
    return rec.history


def test_a_call_result_freed_by_the_interpreter_names_the_c_function_that_returned_it() -> None:
    result = analyze(_released_by_the_interpreter(dict(RELEASE)))
    over = result["overdecref_candidate"]
    assert set(over) == CANDIDATE_KEYS
    assert (over["function"], over["increments"], over["decrements"], over["events"]) == ("get_borrowed", 0, 1, [1])
    assert over["culprit"] == {"kind": "native", "function": "get_borrowed", "file": None, "line": None, "module": EXT}
    assert over["python"] == "scenario (/src/app.py:11)"
    assert ("get_borrowed returned the object to the interpreter without raising its count (a borrowed reference "
            "returned as new): the call ext.get_borrowed at app.py:11 raised no count while watched, and the "
            "interpreter's release at app.py:12 (DELETE_FAST db) then freed it.") in result["notes"]
    assert not any("may be legitimate" in n for n in result["notes"])


@pytest.mark.parametrize("why", ["watch set during the call", "incref under the call", "incref by the C function",
                                 "no release facts"])
def test_without_the_whole_proof_a_free_is_not_blamed_on_the_call(why: str) -> None:
    release: dict[str, Any] | None = dict(RELEASE)
    rec = Recording(initial=1)
    if why == "watch set during the call":
        release["watched_before_call"] = False  # type: ignore[index]
    elif why == "incref under the call":  # something under the call raised the count (then dropped it elsewhere)
        rec.add(+1, [c("Py_INCREF"), c("dict_getitem"), c("cfunction_call"), p("scenario", 11)])
        rec.add(-1, [c("Py_DECREF"), p("other", 40)])
    elif why == "incref by the C function":
        rec.add(+1, [x("Py_INCREF"), x("get_borrowed", 20), c("cfunction_call"), p("elsewhere", 2)])
        rec.add(-1, [c("Py_DECREF"), p("other", 40)])
    else:
        release = None
    zero = rec.add(-1, DEL_DB)
    zero.op, zero.release = "DELETE_FAST", release
    result = analyze(rec.history)
    assert result["overdecref_candidate"] is None or result["overdecref_candidate"]["function"] != "get_borrowed"
    assert not any("borrowed reference returned as new" in n for n in result["notes"])
    assert any("no later use was recorded, so the free may be legitimate" in n for n in result["notes"])


def test_release_facts_survive_the_log() -> None:
    history = _released_by_the_interpreter(dict(RELEASE))
    zero = history.events[-1]
    again = Event.from_json(json.loads(json.dumps(zero.to_json())))
    assert again.release == RELEASE
    assert "release" not in history.events[-1].__class__(1, 1, 1, 2, ev.INCREF, None, None, None).to_json()
