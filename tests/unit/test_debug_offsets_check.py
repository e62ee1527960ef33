"""The target's _Py_DebugOffsets are target memory: checked (sizes, order, alignment,
bounds) before they replace the generated table; corrupt ones are ignored with a warning.

Every entry of 3.13's struct is corrupted in turn with hostile values, then
version, info, bt and diagnose run: no exception other than CommandFailed,
``--json`` one line, and the answers come from the generated table."""

from __future__ import annotations

import json

import pytest

from pylife.commands import CommandFailed, execute
from pylife.cpython import offsets_check

from .builders import DEBUG_OFFSETS_3_13_0, FakePython
from .support import run_json, session_of

ENTRIES = [(group, name) for group, fields in DEBUG_OFFSETS_3_13_0 for name, _value in fields]
HOSTILE = [0, 3, 1 << 63, (1 << 64) - 1, 1 << 40]


def _prepared() -> tuple[FakePython, int, int]:
    py = FakePython((3, 13))
    code = py.code_with_ops("f", "/src/app.py", 10, ["LOAD_FAST", "STORE_ATTR"], 11)
    py.python_thread(4242, [(code, 1)])
    return py, py.value([1, "two", 3.0]), py.value({"k": 1})


def _no_traceback(py: FakePython, argv: list[str]) -> str:
    try:
        text = execute(session_of(py), argv)
    except CommandFailed as exc:
        assert "\n" not in str(exc)
        return str(exc)
    if "--json" in argv:
        assert text.count("\n") == 1 and isinstance(json.loads(text), dict), text
    return text


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: f"{e[0]}.{e[1]}")
def test_every_corrupted_entry_is_survived(entry: tuple[str, str]) -> None:
    for value in HOSTILE:
        py, lst, dct = _prepared()
        py.write_debug_offsets({entry: value})
        for argv in (["version", "--json"], ["info", hex(lst), "--json"], ["info", hex(dct)],
                     ["bt", "--all", "--json"], ["bt", "--all"], ["diagnose", "--json"]):
            _no_traceback(py, argv)
        data = run_json(py, ["info", hex(lst)])
        assert data.get("type") == "list" and data.get("preview") == "[1, 'two', 3.0]", (entry, value, data)


@pytest.mark.parametrize(("entry", "value", "words"), [
    (("interpreter_frame", "size"), 1 << 63, "_PyInterpreterFrame.size"),
    (("interpreter_frame", "owner"), 500, "outside its struct"),
    (("type_object", "tp_name"), 200, "out of the order"),
    (("pyobject", "ob_type"), 0, "before where every build has it"),
    (("type_object", "tp_flags"), 20, "PyTypeObject.tp_flags is 20"),
    (("pyobject", "ob_type"), 12, "misaligned"),
    (("thread_state", "next"), 16, "out of the order"),
])
def test_corrupt_offsets_fall_back_to_the_table_with_a_warning(entry: tuple[str, str], value: int, words: str) -> None:
    py, lst, _dct = _prepared()
    py.write_debug_offsets({entry: value})
    data = run_json(py, ["version"])
    warnings = [str(w) for w in data["warnings"]]  # type: ignore[union-attr]
    assert any("look corrupt" in w and words in w for w in warnings), warnings
    assert "_Py_DebugOffsets" not in str(data["layout_source"])
    bt = run_json(py, ["bt", "--all"])
    frames = [f for t in bt["threads"] for f in t["frames"] if f["kind"] == "python"]
    assert [(f["function"], f["line"]) for f in frames] == [("f", 11)], bt
    assert execute(session_of(py), ["info", hex(lst)]).startswith("warning: _Py_DebugOffsets in the target look corrupt")


def test_a_plausible_build_difference_is_kept() -> None:
    """A Py_TRACE_REFS-like shift (16 bytes more in every object) is no corruption."""
    table = {"PyObject.size": 16, "PyObject.ob_type": 8, "PyTypeObject.tp_name": 24, "PyTypeObject.tp_flags": 168,
             "PyTypeObject.size": 416}
    shifted = {"PyObject.size": 32, "PyObject.ob_type": 24, "PyTypeObject.tp_name": 40, "PyTypeObject.tp_flags": 184,
               "PyTypeObject.size": 432}
    assert offsets_check.problem(shifted, table) is None
    assert offsets_check.problem({**shifted, "PyObject.size": 1 << 30}, table) is not None
