"""Previews of every decoded type equal Python's repr of the same value, on every layout."""

from __future__ import annotations

import math

import pytest

from .builders import FakePython
from .support import preview_of

SCALARS: list[object] = [
    "", "abc", "it's \"quoted\"\n\t\\", "héllo wörld", "€uro ŭ", "emoji 😀 ok", "\x00\x1b[31mred\x7f\x9b",
    "\ud800 lone surrogate",
    b"", b"xy", b"\x00\xff'\"\n", bytes(range(20)),
    0, 1, -1, 7, 2**30 - 1, 2**30, -(2**30), 2**60 + 12345, 2**64, -(2**100) - 1, 10**50, -(10**80),
    True, False,
    1.5, -0.0, 0.1, 1e300, -2.5e-300, math.inf, -math.inf, math.nan,
    None,
]

CONTAINERS: list[object] = [
    (), (1,), ("a", 2, 3.0), ((1,), ()), [], [1, 2], ["x", [1, [2, 3]]], [(), [], {}],
    {}, {"a": 1, "b": [1, 2]}, {"z": 1, "a": 2, "m": 3}, {1: "one", (1, 2): None, 2.5: b"x"},
    {"nested": {"k": ("v",)}}, set(), {1, 2, 3}, {5}, frozenset(), frozenset({1, 2}), [{1, 2}, frozenset({3})],
]


@pytest.mark.parametrize("value", SCALARS, ids=repr)
def test_scalar_previews_match_repr(py: FakePython, value: object) -> None:
    assert preview_of(py, py.value(value)) == repr(value)


@pytest.mark.parametrize("value", CONTAINERS, ids=repr)
def test_container_previews_match_repr(py: FakePython, value: object) -> None:
    assert preview_of(py, py.value(value)) == repr(value)


@pytest.mark.parametrize("text", ["abc", "héllo", "€uro", "😀x", ""])
def test_legacy_non_compact_str(py: FakePython, text: str) -> None:
    assert preview_of(py, py.str(text, legacy=True)) == repr(text)


def test_interned_str_state_bits_are_ignored(py: FakePython) -> None:
    assert preview_of(py, py.str("interned", interned=1)) == "'interned'"
    assert preview_of(py, py.str("immortal", interned=3)) == "'immortal'"


def test_singletons(py: FakePython) -> None:
    assert preview_of(py, py.none) == "None"
    assert preview_of(py, py.true) == "True"
    assert preview_of(py, py.false) == "False"


def test_class_previews(py: FakePython) -> None:
    assert preview_of(py, py.types["int"]) == "<class 'int'>"
    assert preview_of(py, py.types["type"]) == "<class 'type'>"
    assert preview_of(py, py.heap_type("Foo", "mod")) == "<class 'mod.Foo'>"
    assert preview_of(py, py.heap_type("Inner", "pkg.sub", qualname="Outer.Inner")) == "<class 'pkg.sub.Outer.Inner'>"
    # type_repr omits the builtins module.
    assert preview_of(py, py.heap_type("Local", "builtins")) == "<class 'Local'>"


def test_instance_of_heap_type(py: FakePython) -> None:
    obj = py.instance(py.heap_type("Foo", "mod"))
    assert preview_of(py, obj) == f"<mod.Foo object at {obj:#x}>"


def test_instance_of_metaclass_is_a_class(py: FakePython) -> None:
    type_flags = py.facts["type"][0]
    meta = py.heap_type("Meta", "mod", flags=type_flags | (1 << 9), basicsize=py.facts["type"][1], itemsize=40)
    cls = py.heap_type("WithMeta", "mod", metatype=meta)
    assert preview_of(py, cls) == "<class 'mod.WithMeta'>"


def test_function_code_module(py: FakePython) -> None:
    func = py.function("q")
    assert preview_of(py, func) == f"<function q at {func:#x}>"
    method = py.function("Klass.method")
    assert preview_of(py, method) == f"<function Klass.method at {method:#x}>"
    code = py.code("q", "/src/app.py", 42)
    assert preview_of(py, code) == f'<code object q at {code:#x}, file "/src/app.py", line 42>'
    assert preview_of(py, py.module("m", "f")) == "<module 'm' from 'f'>"
    assert preview_of(py, py.module("pkg.mod", "/src/pkg/mod.py")) == "<module 'pkg.mod' from '/src/pkg/mod.py'>"
    assert preview_of(py, py.module("nofile")) == "<module 'nofile'>"


def test_split_dict(py: FakePython) -> None:
    keys = [py.str(k) for k in ("alpha", "beta", "gamma")]
    values = [py.int(1), py.value([2]), py.none]
    address = py.dict(list(zip(keys, values)), split=True)
    assert preview_of(py, address) == "{'alpha': 1, 'beta': [2], 'gamma': None}"


def test_dict_with_deleted_entries(py: FakePython) -> None:
    items = [(py.str("a"), py.int(1)), (py.str("c"), py.int(3))]
    assert preview_of(py, py.dict(items, deleted=[1])) == "{'a': 1, 'c': 3}"
    general = [(py.int(1), py.int(1)), (py.int(3), py.int(3))]
    assert preview_of(py, py.dict(general, deleted=[0, 2])) == "{1: 1, 3: 3}"


@pytest.mark.parametrize("log2_size", [3, 7, 8, 15, 16])
def test_dict_index_widths(py: FakePython, log2_size: int) -> None:
    """1-, 2- and 4-byte hash indices put the entries at different offsets."""
    value = {f"k{i}": i for i in range(12)}
    items = [(py.str(k), py.int(v)) for k, v in value.items()]
    if (2 << log2_size) // 3 < len(items):
        items = items[:4]
        value = dict(list(value.items())[:4])
    address = py.dict(items, log2_size=log2_size)
    assert preview_of(py, address, items=20) == repr(value)


def test_general_dict_in_every_layout(py: FakePython) -> None:
    value = {(1, 2): "t", 3: [4], None: None, b"k": 1.5}
    assert preview_of(py, py.value(value)) == repr(value)


def test_big_table_set(py: FakePython) -> None:
    value = set(range(40))
    address = py.value(value)
    assert preview_of(py, address, items=50) == repr(value)


def test_set_skips_dummy_entries(py: FakePython) -> None:
    address = py.set([py.int(1), py.int(2)], hashes=[1, 2], dummies=2)
    assert preview_of(py, address) == "{1, 2}"


def test_int_beyond_digit_budget(py: FakePython) -> None:
    assert preview_of(py, py.int(2 ** (30 * 201 - 1))) == "<int of 201 30-bit digits>"
    assert preview_of(py, py.int(-(2 ** (30 * 300)))) == "<int of 301 30-bit digits, negative>"


# ---- budgets -------------------------------------------------------------------


def test_chars_budget(py: FakePython) -> None:
    text = "x" * 100
    assert preview_of(py, py.str(text), chars=10) == repr("x" * 10) + "..."
    assert preview_of(py, py.str("€" * 30), chars=5) == repr("€" * 5) + "..."
    assert preview_of(py, py.bytes(b"y" * 100), chars=4) == repr(b"yyyy") + "..."
    assert preview_of(py, py.str("exactly10!"), chars=10) == "'exactly10!'"
    assert preview_of(py, py.str("abc"), chars=0) == "''..."


def test_items_budget(py: FakePython) -> None:
    assert preview_of(py, py.value(list(range(20))), items=5) == "[0, 1, 2, 3, 4, ...]"
    assert preview_of(py, py.value(tuple(range(20))), items=3) == "(0, 1, 2, ...)"
    assert preview_of(py, py.value({"a": 1, "b": 2, "c": 3}), items=2) == "{'a': 1, 'b': 2, ...}"
    assert preview_of(py, py.value({1, 2, 3, 4}), items=2) == "{1, 2, ...}"
    assert preview_of(py, py.value(frozenset({1, 2, 3})), items=1) == "frozenset({1, ...})"


def test_zero_items_budget_shows_no_item(py: FakePython) -> None:
    assert preview_of(py, py.value([1, 2]), items=0) == "[...]"
    assert preview_of(py, py.value({"a": 1}), items=0) == "{...}"
    assert preview_of(py, py.value({1, 2}), items=0) == "{...}"
    assert preview_of(py, py.value([]), items=0) == "[]"


def test_depth_budget(py: FakePython) -> None:
    nested = py.value([[[[1]]]])
    assert preview_of(py, nested) == "[[[[...]]]]"
    assert preview_of(py, nested, depth=2) == "[[[...]]]"
    assert preview_of(py, nested, depth=0) == "[...]"
    assert preview_of(py, nested, depth=10) == "[[[[1]]]]"
    assert preview_of(py, py.value({"k": {"k": {}}}), depth=1) == "{'k': {...}}"
    assert preview_of(py, py.value(((1,),)), depth=1) == "((...),)"


def test_total_budget_stops_containers(py: FakePython) -> None:
    value = [["a" * 30] * 3 for _ in range(10)]
    full = preview_of(py, py.value(value), total=10_000)
    assert full == repr(value)
    short = preview_of(py, py.value(value), total=200)
    assert short.startswith("[['" + "a" * 30) and "[...]" in short and len(short) < len(full)


def test_self_containing_list(py: FakePython) -> None:
    lst = py.list([py.int(1), 0])
    py.list_set(lst, 1, lst)
    assert preview_of(py, lst) == "[1, [...]]"


def test_mutually_recursive_containers(py: FakePython) -> None:
    a = py.list([0])
    b = py.list([a])
    py.list_set(a, 0, b)
    expected_a: list[object] = []
    expected_b = [expected_a]
    expected_a.append(expected_b)
    assert preview_of(py, a, depth=10) == repr(expected_a) == "[[[...]]]"
    d_key = py.str("self")
    d = py.dict([(d_key, py.none)])
    # Point the value at the dict itself: {'self': {...}}.
    keys = py.t.peek_u64(d + py.o("PyDictObject.ma_keys"))
    objects_value_offset = _first_value_slot(py, keys)
    py.t.write_u64(objects_value_offset, d)
    assert preview_of(py, d) == "{'self': {...}}"


def _first_value_slot(py: FakePython, keys: int) -> int:
    """Address of entry 0's value in a combined dict's keys object."""
    if "PyDictKeysObject.dk_log2_size" in py.off:
        index_bytes = 1 << py.t.read(keys + py.o("PyDictKeysObject.dk_log2_index_bytes"), 1)[0]
        kind = py.t.read(keys + py.o("PyDictKeysObject.dk_kind"), 1)[0]
        entries = keys + py.o("PyDictKeysObject.dk_indices") + index_bytes
        return entries + (16 if kind == 0 else 8)
    size = py.t.peek_u64(keys + py.o("PyDictKeysObject.dk_size"))
    return keys + py.o("PyDictKeysObject.dk_indices") + size + 16
