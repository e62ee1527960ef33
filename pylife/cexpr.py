"""The read-only subset of C expressions an adapter can resolve without the
debugger's expression evaluator (lldb's maps scratch pages into a live
inferior even with JIT off).

``parse`` turns the text into a small tree; the adapter evaluates it with
registers, frame variables, globals, symbols and memory reads. Anything else
is ``Other``: the adapter hands it to its evaluator (with function calls
refused). The text is the user's, so the parser is bounded: a length budget,
a nesting budget, and no backtracking regular expression on the cast syntax
(1,200 nested parentheses used to raise RecursionError, and an unclosed cast
with 1,600 spaces took over 10 s to refuse).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

from .errors import UserError

MAX_LENGTH = 4096
MAX_DEPTH = 64  # parentheses and casts around one operand

_IDENTIFIER = re.compile(r"[A-Za-z_]\w*\Z")
_INTEGER = re.compile(r"(0[xX][0-9a-fA-F]+|[0-9]+)\Z")
# A global's name with an optional `&` and member/index path: `&_PyRuntime.gilstate`.
_NAMED = re.compile(r"(?P<amp>&\s*)?(?P<name>[A-Za-z_]\w*)(?P<path>(?:\.|->|\[)[\w.\[\]>-]*)?\Z")
QUALIFIERS = frozenset({"const", "volatile"})


@dataclass(frozen=True)
class Number:
    value: int


@dataclass(frozen=True)
class Register:
    name: str  # without the `$`
    text: str


@dataclass(frozen=True)
class Named:
    """`name`, `&name`, `name.field`, `&name->field[2]`: a variable, a global or a symbol."""

    text: str
    name: str
    path: str | None
    address_of: bool


@dataclass(frozen=True)
class Cast:
    """`(TYPE)operand` or, with ``deref``, `*(TYPE *)operand`."""

    text: str
    type_words: tuple[str, ...]  # qualifiers dropped: ("unsigned", "long"), ("struct", "_object")
    stars: int
    deref: bool
    operand: Node


@dataclass(frozen=True)
class Other:
    """Beyond the subset (arithmetic, calls, ...), or a frame variable path: the adapter decides."""

    text: str


Node = Union[Number, Register, Named, Cast, Other]


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _split_cast(body: str) -> tuple[tuple[str, ...], int, str] | None:
    """(type words, stars, rest) of `(TYPE *...) rest`, scanning once; None if it is no cast."""
    if not body.startswith("("):
        return None
    close = body.find(")")
    if close < 0:
        return None
    inside = body[1:close].rstrip()
    stars = 0
    while inside.endswith("*"):
        stars += 1
        inside = inside[:-1].rstrip()
    words = inside.split()
    if not words or not all(_IDENTIFIER.match(word) for word in words):
        return None
    rest = body[close + 1 :].strip()
    if not rest:
        return None
    return tuple(w for w in words if w not in QUALIFIERS), stars, rest


def parse(expression: str) -> Node:
    """The tree of ``expression``; UserError when it is over the length or nesting budget."""
    text = expression.strip()
    if len(text) > MAX_LENGTH:
        raise UserError(f"expression longer than {MAX_LENGTH} characters")
    casts: list[tuple[str, tuple[str, ...], int, bool]] = []
    depth = 0
    while True:
        if depth > MAX_DEPTH:
            raise UserError(f"expression nested more than {MAX_DEPTH} levels deep")
        if _INTEGER.match(text):
            node: Node = Number(int(text, 0))
            break
        if text.startswith("$") and _IDENTIFIER.match(text[1:]):
            node = Register(text[1:], text)
            break
        named = _NAMED.match(text)
        if named:
            node = Named(text, named.group("name"), named.group("path"), bool(named.group("amp")))
            break
        if text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
            text = text[1:-1].strip()
            depth += 1
            continue
        deref = text.startswith("*")
        cast = _split_cast(text[1:].lstrip() if deref else text)
        if cast is None:
            node = Other(text)
            break
        words, stars, rest = cast
        casts.append((text, words, stars, deref))
        text = rest
        depth += 1
    for outer_text, words, stars, deref in reversed(casts):
        node = Cast(outer_text, words, stars, deref, node)
    return node
