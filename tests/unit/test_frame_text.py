"""pylife/frame_text.py: the one way a stack frame reads as text, in every renderer."""

from __future__ import annotations

from pylife.cpython.culprit import describe
from pylife.frame_text import frame_at, frame_line, frame_site, frame_where
from pylife.render import html, records, text
from pylife.render.escape import escape
from pylife.report import Report

PYTHON = {"kind": "python", "function": "f\u202e", "file": "/src/app.py", "line": 12, "module": None}
NATIVE = {"kind": "native", "function": "list_append", "file": "Objects/listobject.c", "line": 0,
          "module": "libpython3.12.so.1.0"}


def test_the_two_forms() -> None:
    assert frame_at("f", "/src/app.py", 12) == "f at /src/app.py:12"
    assert frame_at("f", "/src/app.py", None) == "f at /src/app.py"
    assert frame_at("f", None, 12) == "f"
    assert frame_site("f", "/src/app.py", 12) == "f (/src/app.py:12)"
    assert frame_site("f", "/src/app.py", 12, basename=True) == "f (app.py:12)"
    assert frame_site(None, None, None) == "None"
    assert frame_where("buggy.c", 42) == "buggy.c:42" and frame_where(None, None) == "?:?"


def test_numbered_line_escapes_then_styles() -> None:
    def green(s: str) -> str:
        return f"\x1b[32m{s}\x1b[0m"

    assert frame_line(3, PYTHON, escape, green) == "#3   py \x1b[32mf\\u202e\x1b[0m at /src/app.py:12"
    assert frame_line(0, NATIVE) == "#0   c  list_append at Objects/listobject.c [libpython3.12.so.1.0]"
    assert frame_line(0, NATIVE, module=False) == "#0   c  list_append at Objects/listobject.c"


def test_every_renderer_prints_a_frame_the_same_way() -> None:
    """bt, the event view, diagnose and the HTML report: the same line for the same frame."""
    line = frame_line(0, PYTHON, escape)
    bt = text.render(Report("bt", {"threads": [{"tid": 1, "name": None, "holds_gil": False, "tstate": 1,
                                                  "frames": [PYTHON], "notes": []}], "show_source": False}))
    event = records.event({"address": 16, "type": "int", "seq": 1, "kind": "incref", "old": 1, "new": 2, "tid": 1,
                           "writer": None, "op": None, "python": None, "stack": [PYTHON]}, False)
    diagnose = text.render(Report("diagnose", {"kind": "unknown", "summary": "", "objects": [], "stack": [PYTHON],
                                               "notes": []}))
    assert f"  {line}" in bt.splitlines() and f"  {line}" in event.splitlines() and f"  {line}" in diagnose.splitlines()
    assert html.escape(frame_line(0, PYTHON, module=False)) in html._stack([PYTHON])
    assert describe(PYTHON) == "f\u202e (app.py:12)"  # culprit and stop messages; escaped where shown
