"""Argument helpers shared by verbs."""

from __future__ import annotations

import re

from ..errors import UserError
from ..target import Target

_INTEGER = re.compile(r"^(0[xX][0-9a-fA-F]+|[0-9]+)$")


def resolve_address(target: Target, words: list[str]) -> int:
    """An address from a literal (0x..., decimal) or any debugger expression."""
    expression = " ".join(words).strip()
    if not expression:
        raise UserError("an address or expression is required")
    if _INTEGER.match(expression):
        value = int(expression, 0)
    else:
        value = target.evaluate_address(expression)
    if not 0 <= value < 1 << 64:
        raise UserError(f"'{expression}' is not a 64-bit address")
    return value
