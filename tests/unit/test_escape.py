"""The one escaper: control, bidi and line-separator characters never reach a terminal or HTML raw."""

from __future__ import annotations

import unicodedata

import pytest

from pylife.commands import CommandFailed, execute
from pylife.render.escape import BIDI_CONTROLS, cut, escape, escape_html, shown

from .builders import FakePython
from .support import session_of


def _dangerous(char: str) -> bool:
    code = ord(char)
    return (code < 0x20 or 0x7F <= code < 0xA0 or unicodedata.bidirectional(char) in
            ("LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI") or code in (0x200E, 0x200F, 0x061C, 0x2028, 0x2029))


def test_every_dangerous_code_point_is_escaped() -> None:
    """Exhaustive over the BMP: what the escaper leaves is never a control, bidi control or line separator."""
    for code in range(0x10000):
        if 0xD800 <= code < 0xE000:
            continue
        out = escape(chr(code))
        assert not any(_dangerous(c) for c in out), hex(code)
        if not _dangerous(chr(code)):
            assert out == chr(code), hex(code)


@pytest.mark.parametrize("char", sorted(BIDI_CONTROLS))
def test_bidi_controls_are_shown_as_code_points(char: int) -> None:
    assert escape(f"evil{chr(char)}txt.py") == f"evil\\u{char:04x}txt.py"


def test_known_attack_strings() -> None:
    assert escape("\u202eexe.txt") == "\\u202eexe.txt"
    assert escape("a\nb\rc\x1b[2J\x9b31m") == "a\\x0ab\\x0dc\\x1b[2J\\x9b31m"
    assert escape("line\u2028break") == "line\\u2028break"
    assert escape("héllo wörld €uro 😀") == "héllo wörld €uro 😀"


def test_html_escapes_markup_and_controls() -> None:
    assert escape_html('<a href="x">\u202e&</a>') == "&lt;a href=&quot;x&quot;&gt;\\u202e&amp;&lt;/a&gt;"


def test_cut_and_shown() -> None:
    assert cut("abcdef", 4) == "abc…"
    assert cut("abc", 3) == "abc"
    assert cut("abc", 0) == ""
    assert shown("\x1b" * 100, 10) == "\\x1b\\x1b\\…"
    assert len(shown("A" * 300)) == 120


# ---- through the commands: names from the target reach text output escaped ---------------------

RLO = "\u202e"


def test_bidi_in_class_function_and_file_names_is_neutralised(py: FakePython) -> None:
    cls = py.heap_type("x", "mod", qualname=f"Evil{RLO}gpj.exe")
    obj = py.instance(cls)
    info_text = execute(session_of(py), ["info", hex(obj)])
    assert RLO not in info_text and "\\u202e" in info_text
    code = py.code_with_ops(f"f{RLO}oo", f"/src/{RLO}app.py", 10, ["LOAD_FAST", "STORE_ATTR"], 11)
    py.python_thread(4242, [(code, 1)])
    bt_text = execute(session_of(py), ["bt", "--all"])
    assert RLO not in bt_text and bt_text.count("\\u202e") >= 2, bt_text


def test_error_lines_are_one_line_and_escaped(py: FakePython) -> None:
    with pytest.raises(CommandFailed) as failed:
        execute(session_of(py), ["info", f"no{RLO}such\nsymbol"])
    message = str(failed.value)
    assert "\n" not in message and RLO not in message and message.startswith("pylife")


def test_tables_keep_number_like_text_as_written() -> None:
    """tabulate would rewrite "1.0" as "1" and "007" as "7": values are text, shown as read."""
    from pylife.render.text import key_value_table, table

    assert key_value_table([("value", "1.0"), ("hash", "007"), ("big", "1e3")]).split() == \
        ["value", "1.0", "hash", "007", "big", "1e3"]
    assert table(["a", "b"], [["1.0", "1.50"]]).splitlines()[-1].split() == ["1.0", "1.50"]


def test_float_value_one_point_zero_in_info(py: FakePython) -> None:
    text = execute(session_of(py), ["info", hex(py.float(1.0))])
    assert any(line.split()[1:] == ["1.0"] for line in text.splitlines() if line.startswith("preview")), text
