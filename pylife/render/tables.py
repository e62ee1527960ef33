"""Aligned tables for text output, with tabulate when it is installed; cells are escaped."""

from __future__ import annotations

from typing import Any

from .escape import escape

try:  # runtime dependency; degrade to a simple aligned layout without it
    from tabulate import tabulate as _tabulate
except ImportError:  # pragma: no cover - exercised when the venv is missing
    _tabulate = None  # type: ignore[assignment]


def key_value_table(rows: list[tuple[str, str]]) -> str:
    rows = [(key, escape(value)) for key, value in rows]
    if _tabulate is not None:
        return str(_tabulate(rows, tablefmt="plain", disable_numparse=True))
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[escape(str(c)) for c in row] for row in rows]
    if _tabulate is not None:
        return str(_tabulate(cells, headers=headers, tablefmt="simple", disable_numparse=True))
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
