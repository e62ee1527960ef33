"""The report model: what a command returns and a renderer turns into text or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Report:
    command: str  # which text renderer applies
    data: dict[str, Any]  # the JSON model (ints, strings, bools, lists, dicts, None)
    warnings: list[str] = field(default_factory=list)
