"""Source lines for Python frames, read from the host's file system (cached)."""

from __future__ import annotations

import os
from functools import lru_cache

MAX_SOURCE_BYTES = 8 << 20


@lru_cache(maxsize=256)
def _lines(path: str) -> tuple[str, ...]:
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_SOURCE_BYTES:
            return ()
        with open(path, encoding="utf-8", errors="replace") as source:
            return tuple(source.read().splitlines())
    except OSError:
        return ()


def source_line(path: str | None, line: int | None) -> str | None:
    if not path or not line or line < 1:
        return None
    lines = _lines(path)
    return lines[line - 1].strip() if line <= len(lines) else None


def highlight(code: str) -> str:
    """Terminal colours for one line of Python, when pygments is available."""
    try:
        from pygments import highlight as _highlight
        from pygments.formatters import TerminalFormatter
        from pygments.lexers import PythonLexer
    except ImportError:
        return code
    return str(_highlight(code, PythonLexer(), TerminalFormatter())).rstrip("\n")
