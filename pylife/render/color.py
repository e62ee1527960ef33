"""Whether text output gets colour: one rule for both debuggers.

Colour (bold headings, Python frames, source lines highlighted by pygments)
only on a terminal, only when the debugger's own colour setting allows it
(gdb: ``set style enabled``, lldb: ``settings set use-color``), never with
``NO_COLOR`` set (https://no-color.org), never in ``--json`` output (the JSON
path does not render text). ``PYLIFE_COLOR=always`` forces it (tests, ``| less -R``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def wants_color(debugger_allows: bool, on_terminal: bool, environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    if environ.get("NO_COLOR"):
        return False
    if environ.get("PYLIFE_COLOR") == "always":
        return True
    return debugger_allows and on_terminal


def stdout_is_terminal() -> bool:
    try:
        return os.isatty(1)
    except OSError:
        return False
