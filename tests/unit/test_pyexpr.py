"""--py expressions over fake memory, per layout: names in frames, attributes, subscripts, hostile input."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pytest

from pylife.commands import CommandFailed, execute
from pylife.errors import PylifeError, UserError
from pylife.pyexpr import evaluate_py
from pylife.session import Session

from .builders import FakePython
from .support import run_json, session_of

TID = 4242
FUNC_PTR = 0x7F00_0BAD_0000  # any non-NULL slot function (tp_descr_get / tp_descr_set)


@dataclass
class Scene:
    py: FakePython
    values: dict[str, int]


def _write_code_names(py: FakePython, code: int, local_names: list[str], cells: list[str], frees: list[str],
                      optimized: bool = True) -> None:
    t = py.t
    t.write_i32(code + py.o("PyCodeObject.co_flags"), 0x3 if optimized else 0x0)
    names = lambda items: py.tuple([py.str(n) for n in items])  # noqa: E731
    if py.key < (3, 11):
        t.write_i32(code + py.o("PyCodeObject.co_nlocals"), len(local_names))
        t.write_u64(code + py.o("PyCodeObject.co_varnames"), names(local_names))
        t.write_u64(code + py.o("PyCodeObject.co_cellvars"), names(cells))
        t.write_u64(code + py.o("PyCodeObject.co_freevars"), names(frees))
    else:
        kinds = bytes([0x20] * len(local_names) + [0x40] * len(cells) + [0x80] * len(frees))
        t.write_i32(code + py.o("PyCodeObject.co_nlocalsplus"), len(kinds))
        t.write_u64(code + py.o("PyCodeObject.co_localsplusnames"), names(local_names + cells + frees))
        t.write_u64(code + py.o("PyCodeObject.co_localspluskinds"), py.bytes(kinds))


def _write_frame(py: FakePython, frame: int, globals_: int, builtins: int, slots: list[int], f_locals: int = 0) -> None:
    prefix = "PyFrameObject." if py.key < (3, 11) else "_PyInterpreterFrame."
    py.t.write_u64(frame + py.o(prefix + "f_globals"), globals_)
    py.t.write_u64(frame + py.o(prefix + "f_builtins"), builtins)
    py.t.write_u64(frame + py.o(prefix + "f_locals"), f_locals)
    base = frame + py.o(prefix + ("f_localsplus" if py.key < (3, 11) else "localsplus"))
    for i, value in enumerate(slots):
        py.t.write_u64(base + 8 * i, value)


def _static(py: FakePython, name: str, basicsize: int, descr: bool = False) -> int:
    tp = py.static_type(name, flags=1 << 12, basicsize=basicsize, itemsize=0)
    if descr:
        py.t.write_u64(tp + py.o("PyTypeObject.tp_descr_get"), FUNC_PTR)
        py.t.write_u64(tp + py.o("PyTypeObject.tp_descr_set"), FUNC_PTR)
    return tp


def _object_of(py: FakePython, type_address: int, size: int) -> int:
    address = py.heap.alloc(size)
    py.t.write_i64(address, 1)
    py.t.write_u64(address + 8, type_address)
    return address


def _set_class(py: FakePython, tp: int, attrs: list[tuple[str, int]], bases: list[int]) -> None:
    pairs = [(py.str("__module__"), py.str("app"))] + [(py.str(k), v) for k, v in attrs]
    py.t.write_u64(tp + py.o("PyTypeObject.tp_dict"), py.dict(pairs))
    py.t.write_u64(tp + py.o("PyTypeObject.tp_mro"), py.tuple([tp, *bases, py.types["object"]]))


def _instance(py: FakePython, tp: int, attrs: list[tuple[str, int]], materialized: bool = False) -> int:
    """An instance of a `class Foo: pass`-like type, its attributes where this version keeps them."""
    key = py.key
    pairs = [(py.str(k), v) for k, v in attrs]
    if key < (3, 11):
        obj = py.instance(tp)
        py.t.write_i64(tp + py.o("PyTypeObject.tp_dictoffset"), 16)
        py.t.write_u64(obj + 16, py.dict(pairs))
        return obj
    split = py.dict(pairs, split=True)
    keys = py.t.peek_u64(split + py.o("PyDictObject.ma_keys"))
    values = py.t.peek_u64(split + py.o("PyDictObject.ma_values"))
    if not materialized:  # the type's shared keys (a materialized dict points at its own)
        py.t.write_u64(tp + py.o("PyHeapTypeObject.ht_cached_keys"), keys)
    py.t.write_i64(tp + py.o("PyTypeObject.tp_dictoffset"), -1)
    if key >= (3, 13):
        obj = py.new_object(tp, 16 + 8 + 8 * 8)
        py.t.write(obj + 16, py.t.read(values, 8 + 8 * 8))
        if materialized:
            py.t.write_u8(obj + 16 + 3, 0)  # valid = 0: the dict owns them now
            py.t.write_u64(obj - 24, split)
        return obj
    obj = py.instance(tp)
    if materialized:
        py.t.write_u64(obj - 24, split)
    elif key == (3, 11):
        py.t.write_u64(obj - 32, values)
    else:
        py.t.write_u64(obj - 24, values - 1)  # PyDictOrValues: tagged values pointer
    return obj


def _scene(py: FakePython) -> Scene:
    v: dict[str, int] = {}
    t = py.t
    cell_type = _static(py, "cell", 24)
    member_type = _static(py, "member_descriptor", 48, descr=True)
    property_type = _static(py, "property", 48, descr=True)
    t.write_u64(py.types["function"] + py.o("PyTypeObject.tp_descr_get"), FUNC_PTR)

    for name in ("x", "c", "f", "db", "one", "none", "bkey", "pair_key", "first", "last", "second", "name",
                 "slot_a", "modattr", "base_attr", "len", "other", "neg"):
        v[name] = py.str(f"<{name}>")
    v["cache"] = py.dict([(py.str("db"), v["db"]), (py.int(1), v["one"]), (py.none, v["none"]),
                          (py.bytes(b"k"), v["bkey"]), (py.tuple([py.int(1), py.str("a")]), v["pair_key"]),
                          (py.int(-5), v["neg"])])
    v["items"] = py.list([v["first"], v["second"], v["last"]])
    v["pair"] = py.tuple([v["first"], v["second"]])

    v["method"] = py.function("Foo.method")
    v["prop"] = _object_of(py, property_type, 48)
    base = py.heap_type("Base", "app")
    _set_class(py, base, [("base_attr", v["base_attr"])], [])
    foo = py.heap_type("Foo", "app")
    _set_class(py, foo, [("method", v["method"]), ("prop", v["prop"])], [base])
    v["Foo"] = foo
    v["inst"] = _instance(py, foo, [("name", v["name"]), ("items", v["items"])])
    v["inst2"] = _instance(py, foo, [("name", v["other"])], materialized=True)

    slotted_facts = py.facts["Slotted"]
    slotted = py.heap_type("Slotted", "app", flags=slotted_facts[0], basicsize=slotted_facts[1])
    member = py.heap.alloc(40)
    t.write_u64(member, py.cstring(b"a"))
    t.write_i32(member + py.o("PyMemberDef.type"), 16)  # T_OBJECT_EX
    t.write_i64(member + py.o("PyMemberDef.offset"), 16)
    descr = _object_of(py, member_type, 48)
    t.write_u64(descr + py.o("PyMemberDescrObject.d_member"), member)
    member_b = py.heap.alloc(40)
    t.write_i32(member_b + py.o("PyMemberDef.type"), 16)
    t.write_i64(member_b + py.o("PyMemberDef.offset"), 16 + 8)
    descr_b = _object_of(py, member_type, 48)
    t.write_u64(descr_b + py.o("PyMemberDescrObject.d_member"), member_b)
    _set_class(py, slotted, [("a", descr), ("b", descr_b)], [])
    v["slotted"] = py.new_object(slotted, 40)
    t.write_u64(v["slotted"] + 16, v["slot_a"])

    v["mod"] = py.module("othermod")
    t.write_u64(v["mod"] + py.o("PyModuleObject.md_dict"),
                py.dict([(py.str("__name__"), py.str("othermod")), (py.str("modattr"), v["modattr"])]))
    v["mod_dict"] = t.peek_u64(v["mod"] + py.o("PyModuleObject.md_dict"))

    v["globals"] = py.dict([(py.str(k), v[k]) for k in ("cache", "items", "pair", "inst", "inst2", "slotted", "mod")]
                           + [(py.str("Foo"), foo), (py.str("__name__"), py.str("app"))])
    v["builtins"] = py.dict([(py.str("len"), v["len"])])

    inner = py.code_with_ops("inner", "/src/app.py", 10, ["LOAD_FAST", "BUILD_LIST"], 12)
    outer = py.code_with_ops("<module>", "/src/app.py", 1, ["LOAD_FAST", "BUILD_LIST"], 3)
    _write_code_names(py, inner, ["x", "unbound"], ["c"], ["f"])
    _write_code_names(py, outer, [], [], [], optimized=False)
    tstate = py.python_thread(TID, [(inner, 1), (outer, 1)], slots=4)
    py.t.selected_thread = TID
    frames = _frames(py, tstate)
    cell_c = _object_of(py, cell_type, 24)
    t.write_u64(cell_c + 16, v["c"])
    cell_f = _object_of(py, cell_type, 24)
    t.write_u64(cell_f + 16, v["f"])
    _write_frame(py, frames[0], v["globals"], v["builtins"], [v["x"], 0, cell_c, cell_f])
    _write_frame(py, frames[1], v["globals"], v["builtins"], [], f_locals=v["globals"])
    return Scene(py, v)


def _frames(py: FakePython, tstate: int) -> list[int]:
    from pylife.cpython.frames import CodeCache, first_frame, walk

    session = session_of(py)
    mem = session.memory()
    objects = session.objects(mem)
    return [f.address for f in walk(mem, objects, CodeCache(objects), first_frame(mem, objects, tstate))]


@pytest.fixture
def scene(py: FakePython) -> Scene:
    """A scene of its own, for tests that change memory."""
    return _scene(py)


_SHARED: dict[tuple[int, int], Scene] = {}


@pytest.fixture
def shared_scene(key: tuple[int, int]) -> Scene:
    """One scene per layout for the tests that only read it (building one takes ~0.1 s)."""
    if key not in _SHARED:
        _SHARED[key] = _scene(FakePython.fresh(key))
    return _SHARED[key]


def _eval(scene: Scene, expr: str, **where: int) -> int:
    return evaluate_py(session_of(scene.py), expr, **where)


def _error(scene: Scene, expr: str, **where: int) -> str:
    with pytest.raises(UserError) as info:
        _eval(scene, expr, **where)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("expr, name", [
    ("x", "x"), ("c", "c"), ("f", "f"), ("len", "len"),
    ('cache["db"]', "db"), ("cache[1]", "one"), ("cache[True]", "one"), ("cache[None]", "none"),
    ('cache[b"k"]', "bkey"), ('cache[(1, "a")]', "pair_key"), ("cache[-5]", "neg"),
    ("items[0]", "first"), ("items[-1]", "last"), ("pair[1]", "second"), ("pair[-2]", "first"),
    ("inst.name", "name"), ("inst.items[2]", "last"), ("inst2.name", "other"), ("slotted.a", "slot_a"),
    ("mod.modattr", "modattr"), ("inst.base_attr", "base_attr"), ("Foo.base_attr", "base_attr"),
    ("Foo.method", "method"), ("Foo.prop", "prop"), ("mod.__dict__", "mod_dict"),
])
def test_names_attributes_and_subscripts(shared_scene: Scene, expr: str, name: str) -> None:
    assert _eval(shared_scene, expr) == shared_scene.values[name]


def test_class_and_dict_of_an_instance(shared_scene: Scene) -> None:
    assert _eval(shared_scene, "inst.__class__") == shared_scene.values["Foo"]
    where = 16 if shared_scene.py.key < (3, 11) else -24  # tp_dictoffset, else the managed dict pointer
    assert _eval(shared_scene, "inst2.__dict__") == shared_scene.py.t.peek_u64(shared_scene.values["inst2"] + where)
    if shared_scene.py.key >= (3, 11):  # values only: no dict object exists to name
        assert "no __dict__ in memory" in _error(shared_scene, "inst.__dict__")


def test_module_frame_reads_its_locals_dict(shared_scene: Scene) -> None:
    assert _eval(shared_scene, "cache", frame=1) == shared_scene.values["cache"]
    message = _error(shared_scene, "x", frame=1)
    assert "name 'x' is not defined" in message and "globals of module 'app'" in message


def test_class_body_frame_reads_its_namespace_then_globals(scene: Scene) -> None:
    py = scene.py
    namespace = py.dict([(py.str("class_local"), scene.values["x"])])
    frames = _frames(py, py.t.peek_u64(py.interp + py.o("PyInterpreterState.threads_head")))
    prefix = "PyFrameObject." if py.key < (3, 11) else "_PyInterpreterFrame."
    py.t.write_u64(frames[1] + py.o(prefix + "f_locals"), namespace)
    assert _eval(scene, "class_local", frame=1) == scene.values["x"]
    assert _eval(scene, "cache", frame=1) == scene.values["cache"]
    assert "the locals dict, the globals of module 'app'" in _error(scene, "nothing", frame=1)


@pytest.mark.parametrize("expr, expected", [
    ("nothing", "name 'nothing' is not defined: searched the locals of inner (frame #0 of thread 4242), "
                "the globals of module 'app', the builtins"),
    ("unbound", "local variable 'unbound' is not bound yet"),
    ('cache["missing"]', "key 'missing' not found in the dict (6 keys)"),
    ("items[3]", "list index 3 out of range (list of 3 items)"),
    ("items['a']", "list indices must be integers, not str"),
    ("inst.prop", "Foo.prop is a property: reading it needs a call into the process"),
    ("inst.method", "Foo.method is a method"),
    ("inst.nothing", "app.Foo object has no attribute 'nothing'"),
    ("slotted.b", "app.Slotted.b is not set"),
    ("mod.missing", "module 'othermod' has no attribute 'missing'"),
    ("x.y", "str object has no attribute 'y'"),
    ("x[0]", "subscripting a str object needs a call into the process"),
    ("f()", "a call is not supported"),
    ("items[0:1]", "a slice is not supported"),
    ("items[1.5]", "a float key is not supported"),
    ("x + 1", "an operator is not supported"),
    ("'s'", "a constant is not an object of the process"),
    ("x[", "invalid syntax"),
])
def test_one_line_errors(shared_scene: Scene, expr: str, expected: str) -> None:
    assert expected in _error(shared_scene, expr)


def test_hostile_mro_is_bounded(scene: Scene) -> None:
    py = scene.py
    foo = scene.values["Foo"]
    py.t.write_u64(foo + py.o("PyTypeObject.tp_mro"), py.tuple([foo] * 1000))
    assert "has 1000 classes (limit 64)" in _error(scene, "inst.base_attr")
    py.t.write_u64(foo + py.o("PyTypeObject.tp_mro"), 0)  # not set: the tp_base chain, which loops here
    py.t.write_u64(foo + py.o("PyTypeObject.tp_base"), foo)
    assert "no attribute 'nothing'" in _error(scene, "inst.nothing")


def test_frame_and_thread_numbers(shared_scene: Scene) -> None:
    assert "no Python frame #5: thread 4242 has 2" in _error(shared_scene, "x", frame=5)
    assert "no thread 99" in _error(shared_scene, "x", thread=99)
    assert _eval(shared_scene, "x", thread=TID, frame=0) == shared_scene.values["x"]


def test_cli_py_frame_and_thread(scene: Scene) -> None:
    py = scene.py
    session = session_of(py)
    data = run_json(py, ["info", "--py", 'cache["db"]'], session)
    assert data["address"] == scene.values["db"] and data["type"] == "str"
    frame = run_json(py, ["frame", "1"], session)
    assert (frame["frame"], frame["function"], frame["tid"], frame["selected"]) == (1, "<module>", TID, True)
    # the selection holds for later commands until the next stop/resume
    assert "is not defined" in run_json(py, ["info", "--py", "x"], session)["error"]
    assert run_json(py, ["info", "--py", "x", "--frame", "0"], session)["address"] == scene.values["x"]
    session.forget_python_frame()
    shown = run_json(py, ["frame"], session)
    assert (shown["frame"], shown["selected"], shown["locals"]) == (0, False, ["x", "c", "f"])
    assert run_json(py, ["info", "--py", "x"], session)["address"] == scene.values["x"]
    with pytest.raises(CommandFailed, match="give ADDR or --py EXPR, not both"):
        execute(session, ["info", "0x1000", "--py", "x"])
    with pytest.raises(CommandFailed, match="--frame and --thread apply to --py EXPR"):
        execute(session, ["info", "0x1000", "--frame", "1"])


# ---- hostile memory -----------------------------------------------------------------


def _global(scene: Scene, name: str, value: int) -> None:
    py = scene.py
    pairs = [(py.str(name), value), (py.str("__name__"), py.str("app"))]
    new_globals = py.dict(pairs)
    frames = _frames(py, py.t.peek_u64(py.interp + py.o("PyInterpreterState.threads_head")))
    prefix = "PyFrameObject." if py.key < (3, 11) else "_PyInterpreterFrame."
    py.t.write_u64(frames[0] + py.o(prefix + "f_globals"), new_globals)


def test_cyclic_dict_chain(scene: Scene) -> None:
    py = scene.py
    cyclic = py.dict([(py.str("self"), 0)])
    keys = py.t.peek_u64(cyclic + py.o("PyDictObject.ma_keys"))
    entries = _entries(py, keys)
    value_at = entries + (8 if py.key >= (3, 11) else 16)
    py.t.write_u64(value_at, cyclic)
    _global(scene, "loop", cyclic)
    assert _eval(scene, 'loop["self"]["self"]["self"]') == cyclic
    assert "more than 64" in _error(scene, "loop" + '["self"]' * 70)


def _entries(py: FakePython, keys: int) -> int:
    if py.key >= (3, 11):
        index_bytes = 1 << py.t.read(keys + py.o("PyDictKeysObject.dk_log2_index_bytes"), 1)[0]
        return keys + py.o("PyDictKeysObject.dk_indices") + index_bytes
    size = struct.unpack("<q", py.t.read(keys + py.o("PyDictKeysObject.dk_size"), 8))[0]
    return keys + py.o("PyDictKeysObject.dk_indices") + size


def test_huge_sizes_and_garbage(scene: Scene) -> None:
    py = scene.py
    huge_list = py.list([py.none])
    py.t.write_i64(huge_list + py.o("PyVarObject.ob_size"), 1 << 50)
    _global(scene, "huge", huge_list)
    assert "implausible ob_size" in _error(scene, "huge[0]")
    huge_dict = py.dict([(py.str("a"), py.none)])
    py.t.write_i64(huge_dict + py.o("PyDictObject.ma_used"), 1 << 50)
    _global(scene, "huge", huge_dict)
    assert "implausible ma_used" in _error(scene, 'huge["a"]')
    garbage = py.dict([(py.str("bad"), 0xDEAD_0000)])
    _global(scene, "g", garbage)
    assert _eval(scene, 'g["bad"]') == 0xDEAD_0000  # the verb judges the final object
    message = _error(scene, 'g["bad"].attr')
    assert message.startswith("g['bad'].attr: cannot read g['bad'] (not a PyObject")


def test_non_str_and_garbage_keys_never_match(scene: Scene) -> None:
    py = scene.py
    mixed = py.dict([(py.int(7), py.none), (0xDEAD_0000, py.none), (py.str("k"), py.true)])
    _global(scene, "m", mixed)
    assert _eval(scene, 'm["k"]') == py.true
    assert "not found" in _error(scene, 'm["7"]')
    assert _eval(scene, "m[7]") == py.none


def test_dict_entries_budget(scene: Scene) -> None:
    from pylife.cpython.attributes import Reader, ReadLimits

    py = scene.py
    big = py.dict([(py.str(f"k{i}"), py.none) for i in range(40)] + [(py.str("last"), py.true)])
    session = session_of(py)
    reader = Reader(session.objects(session.memory()), ReadLimits(dict_entries=16))
    with pytest.raises(UserError, match="key not among the first 16 entries read"):
        reader.dict_lookup(big, "last")
    assert Reader(session.objects(session.memory())).dict_lookup(big, "last") == py.true


def test_garbage_frame_never_tracebacks(scene: Scene) -> None:
    py = scene.py
    frames = _frames(py, py.t.peek_u64(py.interp + py.o("PyInterpreterState.threads_head")))
    prefix = "PyFrameObject." if py.key < (3, 11) else "_PyInterpreterFrame."
    py.t.write_u64(frames[0] + py.o(prefix + "f_globals"), 0xDEAD_0000)
    py.t.write_u64(frames[0] + py.o(prefix + "f_builtins"), 0)
    message = _error(scene, "nothing")
    assert "globals (unreadable: not a dict at 0xdead0000)" in message
    session: Session = session_of(py)
    try:
        evaluate_py(session, "x.y.z")
    except PylifeError as exc:
        assert "\n" not in str(exc)


def test_every_object_verb_takes_py(scene: Scene) -> None:
    py = scene.py
    session = session_of(py)
    conn = scene.values["inst"]
    watched = run_json(py, ["watch", "--py", "inst"], session)
    assert watched["address"] == conn
    assert run_json(py, ["watches"], session)["watches"][0]["address"] == conn
    assert run_json(py, ["history", "--py", "inst"], session)["objects"][0]["address"] == conn
    assert run_json(py, ["unwatch", "--py", "inst", "--frame", "0"], session)["removed"] == [conn]
    assert "is not defined" in run_json(py, ["alloc-site", "--py", "nothing"], session)["error"]
    assert "tracemalloc" in run_json(py, ["alloc-site", "--py", "inst"], session)["error"]  # resolved, then asked
