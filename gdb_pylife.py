"""GDB entry point: `(gdb) source /path/to/gdb_pylife.py`."""

import os
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from pylife import env  # noqa: E402

env.add_project_paths(_ROOT)

from pylife.dbg import gdb_events as _pylife_gdb  # noqa: E402

_pylife_gdb.register()
