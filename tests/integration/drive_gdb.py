"""Run the commands of $PYLIFE_DRIVE_SPEC inside gdb: `(gdb) source drive_gdb.py`."""

from __future__ import annotations

import os
import sys

import gdb  # type: ignore[import-not-found]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drive_common


def execute(command: str) -> tuple[str, str | None]:
    try:
        return gdb.execute(command, to_string=True) or "", None
    except gdb.error as exc:  # gdb.GdbError and failed gdb commands arrive here
        return "", str(exc)


drive_common.run(execute)
