"""Merging C frames with the Python frames their eval-loop activations run."""

from __future__ import annotations

from pylife.cpython.frames import CodeInfo, PyFrame
from pylife.cpython.stack import merge
from pylife.target import NativeFrame


def native(name: str, pc: int = 0x1000) -> NativeFrame:
    return NativeFrame(pc=pc, function=name, file=None, line=None, module="/lib/libpython3.12.so.1.0")


def py(name: str, activation: int, line: int = 1) -> PyFrame:
    code = CodeInfo(0x5000, name, name, "app.py", 1, b"", 0, 0)
    return PyFrame(0x9000 + activation, code, line, 0, activation)


EVAL = "_PyEval_EvalFrameDefault"


def names(frames) -> list[str]:
    return [f"{f.kind[0]}:{f.function}" for f in frames]


def test_each_eval_activation_is_replaced_by_its_python_frames_in_order() -> None:
    c_stack = [native("kill"), native("os_kill"), native(EVAL), native("list_sort"), native(EVAL), native("main")]
    py_stack = [py("keyf", 0), py("inner", 1), py("deep", 1), py("<module>", 1)]
    assert names(merge(c_stack, py_stack)) == [
        "n:kill", "n:os_kill", "p:keyf", "n:list_sort", "p:inner", "p:deep", "p:<module>", "n:main"]


def test_python_only_and_native_only_modes() -> None:
    c_stack = [native("os_kill"), native(EVAL), native("main")]
    py_stack = [py("f", 0), py("<module>", 0)]
    assert names(merge(c_stack, py_stack, "python")) == ["p:f", "p:<module>"]
    annotated = merge(c_stack, py_stack, "native")
    assert names(annotated) == ["n:os_kill", f"n:{EVAL}", "n:main"]
    assert annotated[1].note is not None and "f at app.py:1" in annotated[1].note


def test_python_frames_without_unwound_eval_loop_are_kept_at_the_end() -> None:
    assert names(merge([], [py("f", 0), py("g", 1)])) == ["p:f", "p:g"]
    assert names(merge([native("x"), native(EVAL)], [py("f", 0), py("g", 1)])) == ["n:x", "p:f", "p:g"]


def test_eval_loop_with_no_python_frame_stays_native() -> None:
    merged = merge([native(EVAL), native(EVAL)], [py("f", 1)])
    assert names(merged) == [f"n:{EVAL}", "p:f"]


def test_unreadable_python_frame_is_marked() -> None:
    broken = PyFrame(0xBAD, None, None, None, 0, "unreadable frame at 0xbad: cannot read")
    merged = merge([], [py("f", 0), broken])
    assert merged[-1].function == "<unreadable frame at 0xbad: cannot read>"
    assert merged[-1].to_json()["kind"] == "python"


def test_activation_whose_eval_frame_the_unwinder_lost_is_placed_at_its_wrapper() -> None:
    # lldb-16 on 3.9 skipped __eq__'s _PyEval_EvalFrameDefault; its caller-side
    # inline wrapper _PyEval_EvalFrame still marks where the activation was.
    c_stack = [native("os_kill"), native(EVAL), native("_PyEval_EvalFrame"), native("map_next"),
               native("_PyEval_EvalFrame"), native("slot_tp_richcompare"), native(EVAL), native("_PyEval_EvalFrame")]
    py_stack = [py("stop_here", 0), py("__eq__", 1), py("gen", 2)]
    assert names(merge(c_stack, py_stack)) == [
        "n:os_kill", "p:stop_here", "n:_PyEval_EvalFrame", "n:map_next", "p:__eq__", "n:_PyEval_EvalFrame",
        "n:slot_tp_richcompare", "p:gen", "n:_PyEval_EvalFrame"]
