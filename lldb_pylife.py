"""LLDB entry point: `(lldb) command script import /path/to/lldb_pylife.py`."""

import os
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from pylife import env  # noqa: E402

env.add_project_paths(_ROOT)

from pylife.dbg.lldb_events import PylifeCommand, register  # noqa: E402

__all__ = ["PylifeCommand"]


def __lldb_init_module(debugger: object, internal_dict: dict) -> None:  # name and signature fixed by lldb
    # warn_missing_once prints at most once per lldb session, here or at the first command.
    env.warn_missing_once(sys.stdout.write)
    # lldb resolves `-c` class names through its session dict, where this
    # module is bound under its own name (not `pylife`): hence the re-export.
    register(debugger, f"{__name__}.{PylifeCommand.__name__}")
