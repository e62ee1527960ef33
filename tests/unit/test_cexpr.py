"""The read-only C-expression parser (pylife/cexpr.py): its tree, and its budgets."""

from __future__ import annotations

import pytest

from pylife import cexpr
from pylife.cexpr import Cast, Named, Number, Other, Register
from pylife.errors import UserError

from .builders import FakePython
from .support import run_json


def test_forms_of_the_readme() -> None:
    assert cexpr.parse("0x7f00") == Number(0x7F00)
    assert cexpr.parse(" 42 ") == Number(42)
    assert cexpr.parse("$rdi") == Register("rdi", "$rdi")
    assert cexpr.parse("op") == Named("op", "op", None, False)
    assert cexpr.parse("&_PyRuntime.gilstate") == Named("&_PyRuntime.gilstate", "_PyRuntime", ".gilstate", True)
    assert cexpr.parse("tstate->interp") == Named("tstate->interp", "tstate", "->interp", False)
    assert cexpr.parse("*(PyObject**)$rsp") == Cast("*(PyObject**)$rsp", ("PyObject",), 2, True,
                                                     Register("rsp", "$rsp"))
    assert cexpr.parse("(struct _object *) 0x10") == Cast("(struct _object *) 0x10", ("struct", "_object"), 1, False,
                                                          Number(0x10))
    assert cexpr.parse("(const unsigned long)(op)") == Cast("(const unsigned long)(op)", ("unsigned", "long"), 0,
                                                            False, Named("op", "op", None, False))
    assert cexpr.parse("((((op))))") == Named("op", "op", None, False)


@pytest.mark.parametrize("text", ["op + 8", "f(x)", "(long) f(x)", "a[i] * 2", "(op)->ob_type + 1", "sizeof(x)",
                                  "(1 + 2) * 3", "(long", "(long)", "(1x)y"])
def test_beyond_the_subset_is_other(text: str) -> None:
    node = cexpr.parse(text)
    while isinstance(node, Cast):
        node = node.operand
    assert isinstance(node, (Other, Named, Number)), node
    assert not isinstance(cexpr.parse(text), Number)


def test_deep_nesting_is_refused_in_one_line() -> None:
    with pytest.raises(UserError, match="nested more than"):
        cexpr.parse("(" * 1200 + "op" + ")" * 1200)
    with pytest.raises(UserError, match="nested more than"):
        cexpr.parse("(long)" * 600 + "op")
    assert cexpr.parse("(" * cexpr.MAX_DEPTH + "op" + ")" * cexpr.MAX_DEPTH) == Named("op", "op", None, False)


def test_hostile_text_is_refused() -> None:
    """Unclosed casts, long runs of spaces and stars: the cast syntax is scanned once, with
    no backtracking regular expression (the one before took over 10 s on the first case)."""
    cases = ["(unsigned long" + " " * 1600 + "x", "(" + " " * 1600, "*(" + "long " * 400 + "*" * 800,
             "(" + "a " * 2000 + ")", "(" * 2000, "&" + " " * 4000, "(long)" + " " * 4000 + "x"]
    for text in cases:
        try:
            node = cexpr.parse(text)
        except UserError as exc:
            assert "\n" not in str(exc)
        else:
            assert isinstance(node, (Other, Cast, Named)), (text[:40], node)
    with pytest.raises(UserError, match="longer than"):
        cexpr.parse("x" * (cexpr.MAX_LENGTH + 1))


def test_allow_call_reaches_the_target_only_when_asked(py: FakePython) -> None:
    """Expressions are evaluated with calls refused unless --allow-call is given."""
    address = py.value([1])
    symbol = "pylife_test_list"
    py.t.symbols[symbol] = address
    for argv, allowed in ((["info", symbol, "--json"], False), (["info", symbol, "--allow-call", "--json"], True)):
        assert run_json(py, argv)["address"] == address
        assert py.t.last_allow_call is allowed
