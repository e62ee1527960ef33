"""Parameters shared by the test modules: every debugger x interpreter x mode."""

from __future__ import annotations

from typing import Any

import pytest

from .environment import DEBUGGERS, MINORS, SID_MINORS

MODES = ("live", "core")


def sessions(modes: tuple[str, ...] = MODES, minors: tuple[str, ...] = MINORS + SID_MINORS) -> list[Any]:
    """pytest.param(debugger, minor, mode) for every combination, marked gdb or lldb.

    The sid interpreters (3.14, 3.15 and their debug builds) run under the sid
    root's own gdb and lldb-21."""
    return [
        pytest.param(debugger, minor, mode, id=f"{debugger}-{minor}-{mode}", marks=getattr(pytest.mark, debugger))
        for debugger in DEBUGGERS
        for minor in minors
        for mode in modes
    ]


SESSION_ARGS = "debugger,minor,mode"
