"""Run the commands of $PYLIFE_DRIVE_SPEC inside lldb: `command script import drive_lldb.py`."""

from __future__ import annotations

import os
import sys
from typing import Any

import lldb  # type: ignore[import-not-found]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drive_common


def __lldb_init_module(debugger: Any, internal_dict: dict[str, Any]) -> None:
    interpreter = debugger.GetCommandInterpreter()

    def execute(command: str) -> tuple[str, str | None]:
        result = lldb.SBCommandReturnObject()
        interpreter.HandleCommand(command, result)
        output = result.GetOutput() or ""
        if result.Succeeded():
            return output, None
        return output, result.GetError() or "command failed"

    drive_common.run(execute)
