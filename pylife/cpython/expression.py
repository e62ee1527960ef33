"""Python expressions that name an object, parsed on the host, evaluated over target memory.

Only what reading memory can answer is accepted (design.md §7): a name,
then any chain of ``.attribute`` and ``[constant]`` where the constant is a
str, bytes, int (negative too), None, bool or a tuple of these. Everything
else is refused at parse time with one line saying what is not supported,
so no node can ever need a call into the process.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import PylifeError, UserError
from .attributes import Reader

MAX_EXPRESSION = 4096  # characters
MAX_STEPS = 64  # attributes and subscripts in one chain

Constant = object  # str | bytes | int | bool | None | tuple of these

_DESCRIBED = {
    "Call": "a call", "BinOp": "an operator", "BoolOp": "and/or", "UnaryOp": "a unary operator",
    "Compare": "a comparison", "Lambda": "a lambda", "IfExp": "a conditional expression",
    "Slice": "a slice", "Starred": "a starred expression", "JoinedStr": "an f-string",
    "ListComp": "a comprehension", "SetComp": "a comprehension", "DictComp": "a comprehension",
    "GeneratorExp": "a generator expression", "Await": "await", "Yield": "yield", "YieldFrom": "yield",
    "NamedExpr": "an assignment expression", "List": "a list display", "Dict": "a dict display",
    "Set": "a set display",
}


@dataclass(frozen=True)
class Step:
    kind: str  # "attr" or "item"
    value: Constant  # the attribute name (str) or the subscript's constant key
    text: str  # the expression up to and including this step, for messages


@dataclass(frozen=True)
class Expression:
    source: str
    name: str  # the first name, resolved in the frame
    steps: tuple[Step, ...]


def parse(source: str) -> Expression:
    """Parse and validate; UserError (one line) for anything that is not a readable chain."""
    text = source.strip()
    if not text:
        raise UserError("--py needs a Python expression")
    if len(text) > MAX_EXPRESSION:
        raise UserError(f"--py expression longer than {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise UserError(f"--py {text!r}: invalid syntax ({exc.msg})") from None
    steps: list[Step] = []
    node = tree
    while not isinstance(node, ast.Name):
        if isinstance(node, ast.Attribute):
            steps.append(Step("attr", node.attr, ast.unparse(node)))
            node = node.value
        elif isinstance(node, ast.Subscript):
            try:
                key = _constant(node.slice)
            except UserError as exc:
                raise UserError(f"--py {text!r}: {exc}") from None
            steps.append(Step("item", key, ast.unparse(node)))
            node = node.value
        elif isinstance(node, ast.Constant) and node is tree:
            raise UserError(f"--py {text!r}: a constant is not an object of the process; start with a name")
        else:
            raise UserError(f"--py {text!r}: {_describe(node)} is not supported "
                            "(only names, .attributes and [constant] subscripts are read from memory)")
        if len(steps) > MAX_STEPS:
            raise UserError(f"--py expression has more than {MAX_STEPS} attributes and subscripts")
    return Expression(text, node.id, tuple(reversed(steps)))


def _constant(node: ast.expr) -> Constant:
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (str, bytes, int))):
        return node.value  # bool is an int
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
            and type(node.operand.value) is int):
        return -node.operand.value
    if isinstance(node, ast.Tuple):
        return tuple(_constant(element) for element in node.elts)
    if isinstance(node, ast.Constant):
        raise UserError(f"a {type(node.value).__name__} key is not supported "
                        "(keys: str, bytes, int, None, bool and tuples of these)")
    raise UserError(f"subscript {ast.unparse(node)!r}: {_describe(node)} is not supported "
                    "(keys: str, bytes, int, None, bool and tuples of these constants)")


def _describe(node: ast.AST) -> str:
    name = type(node).__name__
    return _DESCRIBED.get(name, f"a {name} node")


def evaluate(expression: Expression, reader: Reader, resolve_name: Callable[[str], int]) -> int:
    """The address of the object the expression names; UserError (one line) at the first step that fails."""
    address = resolve_name(expression.name)
    where = expression.name
    for step in expression.steps:
        try:
            if step.kind == "attr":
                assert isinstance(step.value, str)
                address = reader.attribute(address, step.value)
            else:
                address = reader.subscript(address, step.value)
        except UserError as exc:
            raise UserError(f"{step.text}: {exc}") from None
        except PylifeError as exc:  # garbage along the chain: say where
            raise UserError(f"{step.text}: cannot read {where} ({exc})") from None
        where = step.text
    return address
