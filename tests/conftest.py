"""Top-level test configuration.

The terminal summary says loudly which interpreters and debuggers the
integration tests could use, and which were missing (their tests skip).
"""

from __future__ import annotations

import pytest
from _pytest.terminal import TerminalReporter
from integration import environment


def pytest_terminal_summary(terminalreporter: TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    del exitstatus
    if hasattr(config, "workerinput"):  # an xdist worker: the controller reports
        return
    lines = environment.summary_lines()
    missing = any("MISSING" in line or "NOT USABLE" in line for line in lines)
    terminalreporter.write_sep("=", "pylife integration environment", yellow=missing, green=not missing, bold=True)
    for line in lines:
        loud = "MISSING" in line or "NOT USABLE" in line
        terminalreporter.write_line(line, yellow=loud, bold=loud)
