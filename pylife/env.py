"""Make the project's packages importable from a debugger's embedded Python.

gdb and lldb-16 embed their own Python (Debian's 3.11 here; 3.14 in sid's gdb
18 and lldb-21), not the one the project's virtualenv was made with; pygments
and tabulate are pure Python, so the venv's site-packages for the same minor
version (or, when the debugger's Python lacks them, any) are added at the
*end* of sys.path, never shadowing the debugger's own modules.
"""

from __future__ import annotations

import glob
import os
import sys

_warned = False


def add_project_paths(root: str) -> list[str]:
    added: list[str] = []
    if root not in sys.path:
        sys.path.insert(0, root)
    host = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    venv = os.environ.get("PYLIFE_VENV") or os.path.join(root, ".venv")
    candidates = sorted(glob.glob(os.path.join(venv, "lib", "python3*", "site-packages")))
    same_minor = [path for path in candidates if f"/{host}/" in path]
    # Another minor's site-packages only when the debugger's own Python lacks the
    # packages: sid's gdb 18 and lldb-21 embed 3.14 and bring python3-pygments and
    # python3-tabulate; a 3.11 venv there would only add a second copy.
    chosen = same_minor[:1] or (candidates[:1] if missing_optional() else [])
    for path in chosen:
        if path not in sys.path:
            sys.path.append(path)
            added.append(path)
    return added


def missing_optional() -> list[str]:
    missing = []
    for name in ("tabulate", "pygments"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    return missing


def warn_missing_once(write: object) -> None:
    """Say once per debugger session that output degrades to plain text."""
    global _warned
    missing = missing_optional()
    if missing and not _warned and callable(write):
        _warned = True
        write(f"pylife: {', '.join(missing)} not found (run scripts/setup.sh); using plain output\n")
