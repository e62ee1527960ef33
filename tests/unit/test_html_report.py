"""The HTML report (pylife.render.html): one escaper, one SVG mark per event, nothing external."""

from __future__ import annotations

import re

import pytest

from pylife.record import events as ev
from pylife.render import html

from .test_batch_report import build, crash, history


@pytest.mark.parametrize(("raw", "shown"), [
    ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("a&b \"q\" 'q'", "a&amp;b &quot;q&quot; &#x27;q&#x27;"),
    ("evil\u202etxt.exe", "evil\\u202etxt.exe"),  # RIGHT-TO-LEFT OVERRIDE
    ("\u2066isolate\u2069", "\\u2066isolate\\u2069"),
    ("\u200fmark\u061c", "\\u200fmark\\u061c"),
    ("bell\x07 esc\x1b[31m", "bell\\x07 esc\\x1b[31m"),
    ("csi\x9b c1\x85 del\x7f", "csi\\x9b c1\\x85 del\\x7f"),
    ("line\nnext\ttab\u2028", "line\\x0anext\\x09tab\\u2028"),
])
def test_the_one_escaper(raw: str, shown: str) -> None:
    assert html.escape(raw) == shown


HOSTILE = "Evil\u202e<img src=x onerror=alert(1)>\x1b]8;;http://x\x07"


def _report() -> dict:
    steps = [(1, ev.INCREF, "buggy_leak"), (1, ev.INCREF, "buggy_leak"), (-2, ev.DECREF, "list_clear"),
             (-1, ev.ZERO, "buggy_over_decref"), (0x5555, ev.ALLOCATOR, "pymalloc_free"),
             (1, ev.USE_AFTER_FREE, "buggy_use_after_free")]
    recorded = history(steps)
    recorded.type = HOSTILE
    recorded.events[0].python = HOSTILE
    recorded.events[0].stack[0]["function"] = HOSTILE
    document = build([recorded], {"exit": {"code": None, "signal": "SIGSEGV"}, "crash": crash(), "steps": []},
                     program=["python3", HOSTILE])
    document["crash"]["summary"] = HOSTILE
    return document


def test_multi_line_text_keeps_its_lines_and_nothing_else() -> None:
    assert html.escape_lines("a\u202e\n<b>") == "a\\u202e\n&lt;b&gt;"


def test_one_mark_per_event_and_the_free_and_use_after_free_stand_out() -> None:
    page = html.page(_report())
    marks = re.findall(r'<g class="mark ([\w-]+)" data-seq="(\d+)">', page)
    assert [int(seq) for _, seq in marks] == [1, 2, 3, 4, 5, 6]
    kinds = [kind for kind, _ in marks]
    assert kinds[3] == "zero" and kinds[5] == "uaf"
    assert page.count("<svg") == 1 and '<path class="step"' in page
    assert page.count("<details>") >= 6  # every event's stack is expandable


def test_nothing_from_the_target_escapes_and_nothing_is_external() -> None:
    page = html.page(_report())
    assert "\u202e" not in page and "\x1b" not in page and "\x07" not in page
    assert "<img" not in page and "onerror=alert" not in page.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert "Content-Security-Policy" in page


def test_an_empty_history_still_renders() -> None:
    document = build([history([])], {"exit": {"code": 0, "signal": None}, "steps": []})
    page = html.page(document)
    assert "<svg" in page and 'class="mark' not in page and "No event was recorded" in page


def test_after_the_free_the_allocators_bytes_are_not_plotted_as_a_count() -> None:
    page = html.page(_report())
    labels = re.findall(r'<text class="label" x="\d+" y="[\d.]+" text-anchor="end">(-?\d+)</text>', page)
    assert max(int(v) for v in labels) < 10  # not 0x5555


def test_the_allocation_is_shown_by_its_site() -> None:
    from .test_batch_report import frame

    document = _report()
    document["objects"][0]["allocated"] = [frame("PyType_GenericAlloc", "libpython3.12.so.1.0"), frame("buggy_make")]
    page = html.page(document)
    assert "<summary>allocated by buggy_make (buggy.c:40)</summary>" in page
