"""The one escaper for text that comes from the target (names, files, values).

Every renderer (terminal text, HTML) passes target-controlled text through
here. Three classes of characters never reach the user raw:

- C0 controls, DEL and C1 controls (U+0080-U+009F: U+009B is a one-character
  CSI for many terminals): shown as ``\\xNN``;
- bidirectional controls (Unicode UAX #9: the embeddings and overrides
  U+202A-U+202E, the isolates U+2066-U+2069, the marks U+200E, U+200F and
  U+061C): they reorder what the user reads ("Trojan Source", CVE-2021-42574),
  so they are shown as ``\\uNNNN``;
- the line and paragraph separators U+2028 and U+2029, and U+0085 (already
  C1): some terminals and every JSON-in-HTML consumer break lines there, and a
  one-line answer must stay one line.
"""

from __future__ import annotations

import html

_C0_DEL_C1 = [*range(0x20), *range(0x7F, 0xA0)]
BIDI_CONTROLS = frozenset({0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)})
LINE_SEPARATORS = frozenset({0x2028, 0x2029})

_TABLE: dict[int, str] = {code: f"\\x{code:02x}" for code in _C0_DEL_C1}
_TABLE.update({code: f"\\u{code:04x}" for code in (*BIDI_CONTROLS, *LINE_SEPARATORS)})

ELLIPSIS = "…"


def escape(text: str) -> str:
    """Target text made safe for a terminal: no control, bidi or line-breaking character."""
    return text.translate(_TABLE)


def escape_html(text: str) -> str:
    """Target text made safe inside HTML element content or a quoted attribute."""
    return html.escape(escape(text), quote=True)


def cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, the last one an ellipsis when text was cut.

    Cut before escaping would split an escape sequence; callers escape first
    when the limit is about what the user sees."""
    if limit <= 0:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def shown(text: str, limit: int = 120) -> str:
    """Escaped, then cut to ``limit`` visible characters: for names in one-line answers."""
    return cut(escape(text), limit)
