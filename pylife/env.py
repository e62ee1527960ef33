"""Make the project's packages importable from a debugger's embedded Python.

gdb and lldb-16 embed their own Python (Debian's 3.11 here), not the one the
project's virtualenv was made with; pygments and tabulate are pure Python, so
the venv's site-packages for the same minor version (or, failing that, any)
are added at the *end* of sys.path, never shadowing the host's own modules.
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
    candidates.sort(key=lambda path: 0 if f"/{host}/" in path else 1)
    for path in candidates[:1]:
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
