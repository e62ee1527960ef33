"""How a stack frame reads as text: written once for every renderer, stop message and summary.

Two forms, one built from the other:

- ``frame_at``: ``function at file:line`` (bt, the event stack, diagnose's
  stack and summary, the HTML report's stacks, an eval loop's Python frames);
  numbered by ``frame_line``: ``#3   py function at file:line [module]``;
- ``frame_site``: ``function (file:line)``, a frame named inside a sentence
  (a culprit, a writer's Python line, an allocation or free site);
- ``frame_where``: ``file:line`` with ``?`` for what is unknown (the balance
  table's sites, which aggregate the frames of one C function).

A frame is the JSON of a merged-stack frame (cpython/stack.StackFrame.to_json:
kind, function, file, line, module) or the same three fields given apart.
Target text is escaped by the caller's ``escape`` (the terminal's; the HTML
report escapes the whole block afterwards), and ``style`` decorates the
escaped function name (the terminal's colour).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Text = Callable[[str], str]


def _same(text: str) -> str:
    return text


def frame_at(function: object, file: object, line: object, escape: Text = _same) -> str:
    """``function at file:line``; without a line ``function at file``; without a file ``function``."""
    where = f" at {escape(str(file))}" + (f":{line}" if line else "") if file else ""
    return f"{function}{where}"


def frame_site(function: object, file: object, line: object, basename: bool = False) -> str:
    """``function (file:line)``, the file's last component only with ``basename``."""
    if not file:
        return str(function)
    path = str(file).rsplit("/", 1)[-1] if basename else str(file)
    return f"{function} ({path}:{line})"


def frame_where(file: object, line: object) -> str:
    """``file:line``, ``?`` for a missing file or line."""
    return f"{file or '?'}:{line or '?'}"


def frame_line(number: int, frame: Mapping[str, Any], escape: Text = _same, style: Text = _same,
               module: bool = True) -> str:
    """``#N   py function at file:line [module]`` (``c `` for a C frame); ``module``: show the shared object."""
    marker = "py" if frame.get("kind") == "python" else "c "
    shared = f" [{escape(str(frame['module']))}]" if module and frame.get("module") else ""
    function = style(escape(str(frame.get("function"))))
    return f"#{number:<3} {marker} {frame_at(function, frame.get('file'), frame.get('line'), escape)}{shared}"
