"""Parameters shared by the test modules: every debugger x interpreter x mode."""

from __future__ import annotations

from typing import Any

import pytest

from .environment import DEBUGGERS, MINORS

MODES = ("live", "core")


def sessions(modes: tuple[str, ...] = MODES) -> list[Any]:
    """pytest.param(debugger, minor, mode) for every combination, marked gdb or lldb."""
    return [
        pytest.param(debugger, minor, mode, id=f"{debugger}-{minor}-{mode}", marks=getattr(pytest.mark, debugger))
        for debugger in DEBUGGERS
        for minor in MINORS
        for mode in modes
    ]


SESSION_ARGS = "debugger,minor,mode"
