"""Hostile memory: every corruption gives a verdict, an error line or a graceful preview.

Everything goes through ``pylife.commands.execute`` as a debugger would call it;
no exception other than CommandFailed may escape, and ``--json`` prints exactly
one line holding either the info keys or {"error": ...}.
"""

from __future__ import annotations

import argparse
import json
import random
import struct

import pytest

from pylife.commands import CommandFailed, execute, info
from pylife.errors import PylifeError
from pylife.render import text as text_render
from pylife.session import Session

from .builders import FakePython
from .support import info_json, session_of

JUNK_POINTERS = [0, 1, 8, 0xDEADBEEF, 0xDDDDDDDDDDDDDDDD, (1 << 64) - 1, 1 << 47, 0x7F00_0000_0003]


def forge(py: FakePython, type_address: int, body: bytes = b"", *, refcnt: int = 1, size: int = 64) -> int:
    """Allocate an object header + ``body`` (padded with zeros to ``size``)."""
    obj = py.heap.alloc(16 + max(size, 16 + len(body))) + 16
    py.t.write_i64(obj, refcnt)
    py.t.write_u64(obj + 8, type_address)
    py.t.write(obj + 16, body)
    return obj


def text_or_error(py: FakePython, address: int) -> str:
    """The text rendering of `pylife info ADDR`, or the one-line error."""
    try:
        return execute(session_of(py), ["info", hex(address)])
    except CommandFailed as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith("pylife")
        return message


def assert_error(data: dict[str, object], *words: str) -> None:
    assert set(data) == {"error"}, data
    for word in words:
        assert word in str(data["error"]), data


# ---- object headers and types ----------------------------------------------------


def test_junk_ob_type(py: FakePython) -> None:
    for ob_type in JUNK_POINTERS:
        assert_error(info_json(py, forge(py, ob_type)), "not a PyObject")


def test_null_ob_type(py: FakePython) -> None:
    assert_error(info_json(py, forge(py, 0)), "NULL")


def test_debug_allocator_dead_fill(py: FakePython) -> None:
    obj = forge(py, 0)
    py.t.write(obj - 16, b"\xdd" * 96)
    assert_error(info_json(py, obj), "not a PyObject")


def test_unreadable_object(py: FakePython) -> None:
    for address in [0, 0x10, 0xDEAD0000, 0x7F7F_0000_0000, 0xFFFF_FFFF_FFFF_FFF0]:
        assert_error(info_json(py, address), "not a PyObject")
        assert text_or_error(py, address).startswith("pylife")


def test_type_whose_metatype_is_not_a_metatype(py: FakePython) -> None:
    fake_type = py.static_type("Fake", flags=py.facts["list"][0], basicsize=40, itemsize=0,
                               metatype=py.types["int"])
    assert_error(info_json(py, forge(py, fake_type)), "metatype")


def test_type_whose_metatype_is_junk(py: FakePython) -> None:
    for metatype in [0, 0xDEADBEEF, 0x7F7F_0000_0000]:
        fake_type = py.static_type("Fake", flags=py.facts["list"][0], basicsize=40, itemsize=0)
        py.t.write_u64(fake_type + 8, metatype)
        assert_error(info_json(py, forge(py, fake_type)), "not a type object")


def test_ob_type_pointing_at_a_non_type(py: FakePython) -> None:
    # ob_type points at a str: its own ob_type (str) is not a metatype.
    assert_error(info_json(py, forge(py, py.value("not a type"))), "metatype")


def test_type_with_zero_flags(py: FakePython) -> None:
    fake_type = py.static_type("Zero", flags=0, basicsize=16, itemsize=0)
    data = info_json(py, forge(py, fake_type))
    if "error" not in data:
        assert data["type"] == "Zero" and data["gc"]["tracked"] is False


@pytest.mark.parametrize("sizes", [(0, 0), (-16, 0), (1 << 40, 0), (16, -1), (16, 1 << 20)])
def test_type_with_implausible_sizes(py: FakePython, sizes: tuple[int, int]) -> None:
    fake_type = py.static_type("Odd", flags=py.facts["object"][0], basicsize=sizes[0], itemsize=sizes[1])
    assert_error(info_json(py, forge(py, fake_type)), "tp_basicsize")


ODD_NAMES = [b"A" * 256, b"A" * 279, b"B" * 4000, "\u00e9".encode() * 200, b"", b"Evil\x1b[2J", b"bell\x07",
             b"cr\rhere", b"tab\there", b"del\x7f", b"nl\n", b"Foo\xff\xc9\x9a;", b"\xc2\x9b2J", b"half\xe2\x82",
             "rlo\u202egpj.exe".encode()]


@pytest.mark.parametrize("name", ODD_NAMES, ids=lambda n: repr(n[:24]) + f"[{len(n)}]")
def test_odd_type_names_never_judge_the_object(py: FakePython, name: bytes) -> None:
    """A readable NUL-terminated tp_name within the budget is a name, whatever it holds:
    JSON has it whole, text escaped and cut to one line."""
    fake_type = py.static_type("x", flags=py.facts["object"][0], basicsize=16, itemsize=0,
                               tp_name=py.cstring(name))
    obj = forge(py, fake_type)
    data = info_json(py, obj)
    assert data["type"] == name.decode("utf-8", errors="backslashreplace")
    text = text_or_error(py, obj)
    type_line = next(line for line in text.splitlines() if line.startswith("type"))
    assert len(type_line) < 300 and not any(_raw_control(c) for c in type_line), repr(type_line)


def _raw_control(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code < 0xA0 or 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069


def test_type_name_longer_than_the_budget(py: FakePython) -> None:
    fake_type = py.static_type("x", flags=py.facts["object"][0], basicsize=16, itemsize=0,
                               tp_name=py.cstring(b"A" * 5000))
    assert_error(info_json(py, forge(py, fake_type)), "tp_name", "4096")


def test_junk_tp_name_pointer(py: FakePython) -> None:
    for tp_name in [0, 0xDEADBEEF, 0x7F7F_0000_0000]:
        fake_type = py.static_type("x", flags=py.facts["object"][0], basicsize=16, itemsize=0, tp_name=tp_name)
        assert_error(info_json(py, forge(py, fake_type)), "tp_name")


def test_type_name_without_nul_before_unmapped_memory(py: FakePython) -> None:
    """tp_name runs into an unmapped page with no NUL: an error or a short name, never an exception."""
    fake_type = py.static_type("x", flags=py.facts["object"][0], basicsize=16, itemsize=0)
    hole = py.static.skip_pages(1)  # [hole, hole + 4096) stays unmapped
    py.t.write(hole - 3, b"Foo")
    py.t.write_u64(fake_type + py.o("PyTypeObject.tp_name"), hole - 3)
    data = info_json(py, forge(py, fake_type))
    assert "error" in data or data["type"] == "Foo"


def test_type_name_in_utf8(py: FakePython) -> None:
    fake_type = py.static_type("x", flags=py.facts["object"][0], basicsize=16, itemsize=0,
                               tp_name=py.cstring("Ünïcode.Typ€".encode()))
    obj = forge(py, fake_type)
    assert info_json(py, obj)["type"] == "Ünïcode.Typ€"
    assert "Ünïcode.Typ€" in text_or_error(py, obj)


def test_heap_type_qualname_with_escape_sequences(py: FakePython) -> None:
    cls = py.heap_type("x", "mod", qualname="Evil\x1b]0;owned\x07\u009b31m")
    obj = py.instance(cls)
    data = info_json(py, obj)
    assert data["type"] == "mod.Evil\x1b]0;owned\x07\u009b31m"  # JSON keeps the text, escaped by json
    text = text_or_error(py, obj)
    assert not any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0 for c in text), repr(text)
    assert "\\x1b]0;owned\\x07" in text


@pytest.mark.parametrize("field", ["PyHeapTypeObject.ht_qualname", "PyTypeObject.tp_dict"])
def test_heap_type_with_junk_qualname_or_dict(py: FakePython, field: str) -> None:
    cls = py.heap_type("Plain", "mod")
    py.t.write_u64(cls + py.o(field), 0xDEADBEEF)
    data = info_json(py, py.instance(cls))
    assert data["type"] in ("Plain", "mod.Plain")
    assert info_json(py, cls)["preview"] in ("<class 'Plain'>", "<class 'mod.Plain'>")


# ---- containers ------------------------------------------------------------------


def test_cyclic_list(py: FakePython) -> None:
    lst = py.list([py.int(1), 0])
    py.list_set(lst, 1, lst)
    assert info_json(py, lst)["preview"] == "[1, [...]]"


def test_list_claiming_a_trillion_items(py: FakePython) -> None:
    lst = py.list([py.int(1), py.int(2)], allocated=2)
    py.t.write_i64(lst + py.o("PyVarObject.ob_size"), 10**12)
    data = info_json(py, lst)
    assert any("exceeds allocated" in n for n in data["notes"]), data
    assert isinstance(data["preview"], str) and data["preview"].startswith(("[", "<list object"))
    assert py.t.largest_read <= 1 << 16


@pytest.mark.parametrize("ob_size", [-1, -(10**12), 1 << 62])
def test_list_with_bad_sizes(py: FakePython, ob_size: int) -> None:
    lst = py.list([py.int(1)], allocated=4)
    py.t.write_i64(lst + py.o("PyVarObject.ob_size"), ob_size)
    data = info_json(py, lst)
    assert any("corrupt" in n for n in data["notes"]), data


def test_list_with_junk_item_array(py: FakePython) -> None:
    lst = py.list([py.int(1)])
    for ob_item in JUNK_POINTERS:
        py.t.write_u64(lst + py.o("PyListObject.ob_item"), ob_item)
        assert isinstance(info_json(py, lst)["preview"], str)


def test_tuple_items_pointing_to_garbage(py: FakePython) -> None:
    items = [0, 0xDEADBEEF, 0x1000, 0x1008, py.int(5)]
    tup = py.tuple(items)
    expected = ", ".join(["<invalid object at 0x0>", "<invalid object at 0xdeadbeef>",
                          "<invalid object at 0x1000>", "<invalid object at 0x1008>", "5"])
    assert info_json(py, tup)["preview"] == f"({expected})"


def test_tuple_claiming_huge_size(py: FakePython) -> None:
    tup = py.tuple([py.int(1)])
    py.t.write_i64(tup + py.o("PyVarObject.ob_size"), 1 << 40)
    data = info_json(py, tup)
    assert data["preview"].startswith(("(", "<tuple object"))
    assert py.t.largest_read <= 1 << 16


@pytest.mark.parametrize("length", [-1, -(2**40), 2**50, 2**63 - 1])
def test_str_with_bogus_length(py: FakePython, length: int) -> None:
    s = py.str("hello")
    py.t.write_i64(s + py.o("PyASCIIObject.length"), length)
    data = info_json(py, s)
    assert data["preview"].startswith("<str object at"), data
    assert py.t.largest_read <= 1 << 16


@pytest.mark.parametrize("kind", [0, 3, 5, 7])
def test_str_with_bogus_kind(py: FakePython, kind: int) -> None:
    s = py.str("hello")
    state = struct.unpack("<I", py.t.read(s + py.o("PyASCIIObject.state"), 4))[0]
    py.t.write_u32(s + py.o("PyASCIIObject.state"), (state & ~(7 << 2)) | (kind << 2))
    data = info_json(py, s)
    assert data["preview"].startswith("<str object at"), data


def test_str_length_just_beyond_the_object(py: FakePython) -> None:
    """A plausible but wrong length reads into the neighbours or fails: never an exception."""
    s = py.str("short")
    py.t.write_i64(s + py.o("PyASCIIObject.length"), 10**6)
    data = info_json(py, s)
    assert data["preview"].startswith(("'short", "<str object at"))


def test_str_not_ready(py: FakePython) -> None:
    s = py.str("wstr only")
    state = struct.unpack("<I", py.t.read(s + py.o("PyASCIIObject.state"), 4))[0]
    py.t.write_u32(s + py.o("PyASCIIObject.state"), state & ~(1 << 7))
    preview = info_json(py, s)["preview"]
    if py.key <= (3, 11):
        assert preview.startswith("<str object at") and "not ready" in preview
    else:  # bit 7 is statically_allocated in 3.12+: irrelevant to decoding
        assert preview == "'wstr only'"


def test_legacy_str_with_junk_data_pointer(py: FakePython) -> None:
    s = py.str("legacy", legacy=True)
    for data in JUNK_POINTERS:
        py.t.write_u64(s + py.o("PyUnicodeObject.data"), data)
        assert isinstance(info_json(py, s)["preview"], str)


def test_ucs4_str_with_invalid_code_points(py: FakePython) -> None:
    s = py.str("\U0001f600\U0001f601")
    py.t.write_u32(s + py.o("PyCompactUnicodeObject.size"), 0x7FFFFFFF)
    preview = info_json(py, s)["preview"]
    assert isinstance(preview, str) and preview.endswith("'")


def test_dict_with_garbage_keys_pointer(py: FakePython) -> None:
    d = py.value({"a": 1})
    for keys in [*JUNK_POINTERS, 0x1000]:
        py.t.write_u64(d + py.o("PyDictObject.ma_keys"), keys)
        assert info_json(py, d)["preview"].startswith(("{", "<dict object at")), hex(keys)


def test_dict_with_implausible_keys_header(py: FakePython) -> None:
    d = py.value({"a": 1, "b": 2})
    keys = py.t.peek_u64(d + py.o("PyDictObject.ma_keys"))
    if "PyDictKeysObject.dk_log2_size" in py.off:
        py.t.write_u8(keys + py.o("PyDictKeysObject.dk_log2_size"), 200)
    else:
        py.t.write_i64(keys + py.o("PyDictKeysObject.dk_size"), 12)  # not a power of two
    assert info_json(py, d)["preview"].startswith("<dict object at")


@pytest.mark.parametrize("nentries", [-5, 10**15])
def test_dict_with_junk_nentries(py: FakePython, nentries: int) -> None:
    d = py.value({"a": 1, "b": 2})
    keys = py.t.peek_u64(d + py.o("PyDictObject.ma_keys"))
    py.t.write_i64(keys + py.o("PyDictKeysObject.dk_nentries"), nentries)
    preview = info_json(py, d)["preview"]
    assert preview.startswith(("{", "<dict object at"))
    assert py.t.largest_read <= 1 << 20


def test_dict_with_junk_values_array(py: FakePython) -> None:
    d = py.dict([(py.str("a"), py.int(1))], split=True)
    py.t.write_u64(d + py.o("PyDictObject.ma_values"), 0xDEADBEEF)
    assert info_json(py, d)["preview"].startswith(("{", "<dict object at"))


@pytest.mark.parametrize("mask", [2**60, 2**39, -1, 1 << 20])
def test_set_with_huge_mask(py: FakePython, mask: int) -> None:
    s = py.value({1, 2, 3})
    py.t.write_i64(s + py.o("PySetObject.mask"), mask)
    data = info_json(py, s)
    assert data["preview"].startswith(("{", "<set object at")), data
    assert py.t.largest_read <= 1 << 16


def test_set_with_junk_table(py: FakePython) -> None:
    s = py.value(frozenset({1, 2}))
    for table in JUNK_POINTERS:
        py.t.write_u64(s + py.o("PySetObject.table"), table)
        assert isinstance(info_json(py, s)["preview"], str)


# ---- scalars and others ------------------------------------------------------------


@pytest.mark.parametrize("tag", [1 << 40, (1 << 63) + 5, 3, 7])
def test_int_with_junk_size(py: FakePython, tag: int) -> None:
    n = py.int(12345)
    field = "PyLongObject.lv_tag" if "PyLongObject.lv_tag" in py.off else "PyVarObject.ob_size"
    py.t.write_u64(n + py.o(field), tag)
    data = info_json(py, n)
    assert isinstance(data["preview"], str)
    assert py.t.largest_read <= 1 << 16


@pytest.mark.parametrize("ob_size", [-7, 1 << 50])
def test_bytes_with_junk_size(py: FakePython, ob_size: int) -> None:
    b = py.bytes(b"abc")
    py.t.write_i64(b + py.o("PyVarObject.ob_size"), ob_size)
    data = info_json(py, b)
    assert data["preview"].startswith(("b'", "<bytes object at"))


def test_float_at_the_end_of_mapped_memory(py: FakePython) -> None:
    """The header is readable, ob_fval lies on the next (unmapped) page."""
    py.heap.alloc(1)
    hole = py.heap.skip_pages(1)
    last = hole - 16
    py.t.write_i64(last, 1)
    py.t.write_u64(last + 8, py.types["float"])
    data = info_json(py, last)
    assert "error" in data or data["preview"].startswith(f"<float object at {last:#x}: cannot read")


def test_function_code_module_with_junk_fields(py: FakePython) -> None:
    func = py.function("f")
    py.t.write_u64(func + py.o("PyFunctionObject.func_qualname"), 0xDEADBEEF)
    assert info_json(py, func)["preview"] == f"<function ? at {func:#x}>"
    code = py.code("c", "c.py", 3)
    py.t.write_u64(code + py.o("PyCodeObject.co_filename"), 0)
    assert info_json(py, code)["preview"] == f'<code object c at {code:#x}, file "?", line 3>'
    mod = py.module("m", "f")
    py.t.write_u64(mod + py.o("PyModuleObject.md_dict"), 0xDEADBEEF)
    assert info_json(py, mod)["preview"] == "<module ?>"


def test_freed_pymalloc_block(py: FakePython) -> None:
    """A freed block: the first word is the free-list link; the stale type is still valid."""
    obj = py.value([1, 2])
    py.t.write_u64(obj, 0x00007FFFF7585370)
    data = info_json(py, obj)
    # 3.14+ ob_refcnt is the low 32 bits of the word (Include/object.h).
    assert data["refcnt"] == (0xF7585370 if py.key >= (3, 14) else 0x00007FFFF7585370)


# ---- a small fuzz: valid headers, random bodies ----------------------------------------

FUZZ_KINDS = ["str", "int", "bool", "float", "bytes", "tuple", "list", "dict", "set", "frozenset",
              "function", "code", "module", "NoneType", "type"]


def _info_direct(session: Session, address: int) -> dict[str, object] | None:
    """What execute() does for `info ADDR --json`, minus argparse: only PylifeError may escape."""
    args = argparse.Namespace(address=[hex(address)], py=None, allow_call=False, frame=None, thread=None, depth=3, items=10, chars=80,
                              json=True)
    try:
        report = info.run(session, args)
    except PylifeError:
        return None
    data = json.loads(json.dumps(report.data))
    assert isinstance(data, dict) and isinstance(data["preview"], str)
    text_render.render(report)
    return data


@pytest.mark.parametrize("kind", FUZZ_KINDS)
def test_random_bodies_never_raise(py: FakePython, kind: str) -> None:
    rng = random.Random(f"{py.key}-{kind}")
    anchors = [py.value([1, "two", {"3": 4.0}]), py.value("text"), py.value((5, b"six")), py.none,
               py.types["int"], py.gc_heads()[0]]
    objects = []
    for _ in range(12):
        words = []
        for _ in range(40):
            choice = rng.random()
            if choice < 0.3:
                words.append(rng.getrandbits(64))
            elif choice < 0.5:
                words.append(rng.choice(anchors) + rng.choice([0, 0, 8, 16, 24, -16]))
            elif choice < 0.7:
                words.append(rng.randrange(0, 64))
            else:
                words.append(0)
        obj = forge(py, py.types[kind], struct.pack("<40Q", *words), size=400)
        py.t.write_u64(obj - 16, rng.choice([0, obj - 16, py.gc_heads()[0], rng.getrandbits(64)]))
        objects.append(obj)
    session = session_of(py)
    for obj in objects:
        _info_direct(session, obj)
    info_json(py, objects[0])
    text_or_error(py, objects[-1])


def test_deep_acyclic_nesting_with_a_huge_depth_option(py: FakePython) -> None:
    """A 1500-deep chain of lists and --depth 100000 must not hit Python's recursion limit."""
    inner = py.list([py.int(1)])
    for _ in range(1500):
        inner = py.list([inner])
    preview = info_json(py, inner, "--depth", "100000")["preview"]
    assert preview.startswith("[[[[") and preview.endswith("]]]]") and "[...]" in preview
    assert preview.count("[") <= 100


def test_wide_shared_containers_stay_within_the_total_budget(py: FakePython) -> None:
    """[L]*10 where L = [M]*10 ...: a DAG, not a cycle; the total budget bounds the work."""
    node = py.value("x" * 40)
    for _ in range(12):
        node = py.list([node] * 10)
    preview = info_json(py, node, "--depth", "50", "--items", "10")["preview"]
    assert len(preview) < 20_000


def test_huge_budgets_with_bogus_lengths_never_ask_for_huge_reads(py: FakePython) -> None:
    """gdb aborts when asked to read hundreds of GiB: a corrupt length times a big budget must not get there."""
    s = py.str("short")
    py.t.write_i64(s + py.o("PyASCIIObject.length"), 2**39)
    b = py.bytes(b"short")
    py.t.write_i64(b + py.o("PyVarObject.ob_size"), 2**45)
    lst = py.list([py.int(1)], allocated=1)
    py.t.write_i64(lst + py.o("PyVarObject.ob_size"), 10**12)
    tup = py.tuple([py.int(1)])
    py.t.write_i64(tup + py.o("PyVarObject.ob_size"), 10**12)
    for address in (s, b, lst, tup):
        data = info_json(py, address, "--chars", str(10**12), "--items", str(10**12))
        assert isinstance(data["preview"], str)
    assert py.t.largest_read <= 16 << 20


def test_heap_type_qualname_that_is_not_a_str(py: FakePython) -> None:
    cls = py.heap_type("Real", "mod")
    for target in (py.int(2**62 + 12345), py.value([1, 2]), py.none, py.float(1.5)):
        py.t.write_u64(cls + py.o("PyHeapTypeObject.ht_qualname"), target)
        assert info_json(py, py.instance(cls))["type"] == "Real"


def test_heap_type_module_that_is_not_a_str(py: FakePython) -> None:
    cls = py.heap_type("Real", "mod")
    py.t.write_u64(cls + py.o("PyTypeObject.tp_dict"), py.dict([(py.str("__module__"), py.int(5))]))
    assert info_json(py, py.instance(cls))["type"] == "Real"
    py.t.write_u64(cls + py.o("PyTypeObject.tp_dict"), py.value([1, 2]))  # tp_dict not a dict
    assert info_json(py, py.instance(cls))["type"] == "Real"


def test_heap_type_whose_dict_holds_its_own_instance(py: FakePython) -> None:
    """Resolving the class name reads tp_dict, whose key is an instance of the class: no endless recursion."""
    cls = py.heap_type("Loop", "mod")
    inst = py.instance(cls)
    tp_dict = py.dict([(inst, py.int(1)), (py.str("__module__"), py.str("mod"))])
    py.t.write_u64(cls + py.o("PyTypeObject.tp_dict"), tp_dict)
    py.t.write_u64(cls + py.o("PyHeapTypeObject.ht_qualname"), inst)
    data = info_json(py, inst)
    assert data["type"] == "Loop" and data["preview"] == f"<Loop object at {inst:#x}>"
    py.t.write_u64(cls + py.o("PyHeapTypeObject.ht_qualname"), py.str("Loop"))
    assert info_json(py, inst)["type"] == "mod.Loop"
