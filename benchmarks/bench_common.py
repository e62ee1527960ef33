"""What every benchmark script shares: finding an interpreter, reading its arguments."""

from __future__ import annotations

import glob
import subprocess
from pathlib import Path


def interpreter(minor: str) -> Path | None:
    """The newest pyenv CPython of that minor version, or None."""
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip() or str(Path.home() / ".pyenv")
    found = sorted(glob.glob(f"{root}/versions/{minor}.*/bin/python{minor}"))
    return Path(found[-1]) if found else None


def minor_and_iterations(argv: list[str], default_iterations: int) -> tuple[str, int]:
    """`[MINOR] [--iterations N]` (MINOR defaults to 3.12)."""
    rest = list(argv)
    iterations = default_iterations
    if "--iterations" in rest:
        at = rest.index("--iterations")
        iterations = int(rest[at + 1])
        del rest[at:at + 2]
    return (rest[0] if rest else "3.12"), iterations
