"""Merge native (C) frames with the Python frames their eval loops were running.

Every ``_PyEval_EvalFrameDefault`` activation on the C stack runs a group of
Python frames (see frames.walk's ``activation``); in the merged stack the
activation's native frame is replaced by its Python frames, newest first.
Nothing here depends on reading the eval loop's (optimized-out) locals.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from ..frame_text import frame_at
from ..target import NativeFrame
from .frames import PyFrame

EVAL_FUNCTIONS = frozenset({"_PyEval_EvalFrameDefault"})
# The inline wrapper that calls the eval loop (pycore_ceval.h _PyEval_EvalFrame,
# 3.9+). Its caller-side frame marks an activation whose callee frame an
# unwinder lost (seen with lldb-16 on 3.9: list_vectorcall's caller skipped).
EVAL_WRAPPERS = frozenset({"_PyEval_EvalFrame"})


@dataclass(frozen=True)
class StackFrame:
    kind: str  # "python" or "native"
    function: str
    file: str | None
    line: int | None
    module: str | None  # shared object (native); None for Python frames
    address: int  # pc (native) or frame address (python)
    note: str | None = None  # e.g. "<unreadable frame at 0x...>" or the Python frames of an eval loop

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"kind": self.kind, "function": self.function, "file": self.file,
                                   "line": self.line, "module": self.module}
        if self.note:
            data["note"] = self.note
        return data


def python_frame(frame: PyFrame) -> StackFrame:
    if frame.error:
        return StackFrame("python", f"<{frame.error}>", None, None, None, frame.address, frame.error)
    code = frame.code
    return StackFrame("python", frame.function, code.filename if code else None, frame.line, None, frame.address)


@lru_cache(maxsize=4096)
def _basename(path: str) -> str:
    return os.path.basename(path)


_CORE_IMAGE = re.compile(r"^(libpython\d+\.\d+[a-z]*\.so.*|python\d+(\.\d+)?[a-z]*)$")


def is_core_image(module: str | None) -> bool:
    """The interpreter core: libpythonX.Y.so, or a python executable it is linked into."""
    return bool(module) and bool(_CORE_IMAGE.match(_basename(str(module))))


def native_frame(frame: NativeFrame, note: str | None = None) -> StackFrame:
    module = _basename(frame.module) if frame.module else None
    return StackFrame("native", frame.function or f"{frame.pc:#x}", frame.file, frame.line, module, frame.pc, note)


def is_eval_frame(frame: NativeFrame) -> bool:
    return frame.function in EVAL_FUNCTIONS


def merge(native: Sequence[NativeFrame], python: Sequence[PyFrame], mode: str = "merged") -> list[StackFrame]:
    """mode: "merged" (C with eval loops replaced), "python" or "native" (eval loops annotated)."""
    if mode == "python":
        return [python_frame(f) for f in python]
    groups: dict[int, list[PyFrame]] = {}
    for py_frame in python:
        groups.setdefault(py_frame.activation, []).append(py_frame)
    result: list[StackFrame] = []
    activation = 0
    previous_was_eval = False
    for frame in native:
        lost_eval = frame.function in EVAL_WRAPPERS and not previous_was_eval
        previous_was_eval = is_eval_frame(frame)
        if lost_eval and mode != "native":
            result.extend(python_frame(f) for f in groups.pop(activation, []))
            activation += 1
        if not is_eval_frame(frame):
            result.append(native_frame(frame))
            continue
        group = groups.pop(activation, [])
        activation += 1
        if mode == "native" or not group:
            label = ", ".join(frame_at(f.function, f.code.filename if f.code else "?", f.line) for f in group)
            result.append(native_frame(frame, f"running {label}" if label else None))
        else:
            result.extend(python_frame(f) for f in group)
    if mode != "native":
        # Python frames whose eval loop was not unwound (native stack cut short or unavailable).
        for key in sorted(groups):
            result.extend(python_frame(f) for f in groups[key])
    return result
