"""GC tracking and generation lookup by walking _gc_next to a generation head, on every layout."""

from __future__ import annotations

import time

import pytest

from pylife.cpython import gc
from pylife.cpython.gc import PERMANENT_GENERATION, gc_info, gc_state_addresses, generation_heads
from pylife.target import Memory

from .builders import FakePython
from .fakes import FakeTarget
from .support import info_json, session_of


def _gc(py: FakePython, address: int) -> tuple[dict[str, object], list[str]]:
    data = info_json(py, address)
    assert "error" not in data, data
    return data["gc"], data["notes"]


@pytest.mark.parametrize("generation", [0, 1, 2, PERMANENT_GENERATION])
def test_generation_found(py: FakePython, generation: int) -> None:
    # Some neighbours on the same list, before and after the object.
    for _ in range(5):
        py.value([0])
        py.list([], generation=generation)
    obj = py.list([py.int(1)], generation=generation)
    for _ in range(5):
        py.list([], generation=generation)
    gc, notes = _gc(py, obj)
    assert gc == {"tracked": True, "generation": generation}
    assert any("permanent" in n for n in notes) is (generation == PERMANENT_GENERATION)


def test_gc_state_location(py: FakePython) -> None:
    session = session_of(py)
    mem = session.memory()
    runtime = session.runtime(mem)
    states = gc_state_addresses(mem, runtime)
    assert states == py.gc_states[:1]
    if py.key == (3, 8):
        assert states == [py.runtime + 344]  # _PyRuntime.gc, runtime-global in 3.8
    else:
        assert states == [py.interp + py.o("PyInterpreterState.gc")]
    heads = generation_heads(runtime, states[0])
    assert sorted(heads.items(), key=lambda kv: kv[1]) == [(h, g) for g, h in enumerate(py.gc_heads())]


def test_flag_bits_in_gc_links_are_masked(py: FakePython) -> None:
    obj = py.tuple([py.int(1)], generation=1)
    py.t.write_u64(obj - 16, py.t.peek_u64(obj - 16) | 1)  # NEXT_MASK_UNREACHABLE
    py.t.write_u64(obj - 8, py.t.peek_u64(obj - 8) | 3)  # FINALIZED | COLLECTING in _gc_prev
    gc, _ = _gc(py, obj)
    assert gc == {"tracked": True, "generation": 1}


def test_untracked_and_non_gc(py: FakePython) -> None:
    untracked = py.tuple([py.int(1)], generation=None)
    gc, notes = _gc(py, untracked)
    assert gc == {"tracked": False, "generation": None} and notes == []
    py.gc_untrack(tracked := py.value({"a": 1}))
    assert _gc(py, tracked)[0] == {"tracked": False, "generation": None}
    gc, notes = _gc(py, py.value("not a container"))
    assert gc == {"tracked": False, "generation": None} and notes == []


def test_heap_type_is_tracked_static_type_is_not(py: FakePython) -> None:
    assert _gc(py, py.heap_type("Foo", generation=2))[0] == {"tracked": True, "generation": 2}
    assert _gc(py, py.types["list"])[0] == {"tracked": False, "generation": None}


def test_loop_back_to_the_object(py: FakePython) -> None:
    obj = py.list([], generation=None)
    other = py.list([], generation=None)
    py.t.write_u64(obj - 16, other - 16)
    py.t.write_u64(other - 16, obj - 16)
    gc, notes = _gc(py, obj)
    assert gc == {"tracked": True, "generation": None}
    assert any("loops" in n for n in notes), notes


def test_loop_that_never_reaches_a_head_or_the_object(py: FakePython) -> None:
    """obj -> a -> b -> c -> a ...: a cycle the object itself is not on."""
    obj, a, b, c = (py.list([], generation=None) for _ in range(4))
    py.t.write_u64(obj - 16, a - 16)
    py.t.write_u64(a - 16, b - 16)
    py.t.write_u64(b - 16, c - 16)
    py.t.write_u64(c - 16, a - 16)
    start = time.perf_counter()
    gc, notes = _gc(py, obj)
    assert time.perf_counter() - start < 1.0, "a GC cycle must be detected, not walked for millions of steps"
    assert gc == {"tracked": True, "generation": None}
    assert notes and any("GC list" in n for n in notes), notes


def test_null_link(py: FakePython) -> None:
    obj = py.list([], generation=None)
    nxt = py.list([], generation=None)
    py.t.write_u64(obj - 16, nxt - 16)  # nxt's own _gc_next is NULL
    gc, notes = _gc(py, obj)
    assert gc == {"tracked": True, "generation": None}
    assert any("NULL" in n for n in notes), notes


def test_unreadable_link(py: FakePython) -> None:
    obj = py.list([], generation=None)
    py.t.write_u64(obj - 16, 0xDEAD0000)
    gc, notes = _gc(py, obj)
    assert gc == {"tracked": True, "generation": None}
    assert any("broken" in n for n in notes), notes


def test_unreadable_gc_head(py: FakePython) -> None:
    """A list whose PyGC_Head lies on an unmapped page: GC state unknown, no exception."""
    hole = py.heap.skip_pages(1)
    obj = py.list([], generation=None)  # first object of the next page: its GC head is mapped
    assert obj - 16 >= hole + 4096
    # Forge a list header at the very start of a page whose previous page is unmapped.
    forged = hole + 4096
    py.t.write(forged, py.t.read(obj, 48))
    data = info_json(py, forged)
    assert data["gc"] == {"tracked": None, "generation": None}
    assert any("GC state unreadable" in n for n in data["notes"]), data


def test_collecting_is_noted(py: FakePython) -> None:
    obj = py.list([], generation=0)
    py.t.write_i32(py.gc_states[0] + py.o("_gc_runtime_state.collecting"), 1)
    data = info_json(py, obj)
    assert data["gc"] == {"tracked": True, "generation": 0}
    assert any("collection is in progress" in n for n in data["notes"])


def test_object_in_a_subinterpreter(py: FakePython) -> None:
    if py.key == (3, 8):
        pytest.skip("3.8 keeps one runtime-global GC state")
    sub = py.new_interpreter()
    obj = py.list([], generation=None)
    py.gc_track(obj, 1, state=sub + py.o("PyInterpreterState.gc"))
    assert _gc(py, obj)[0] == {"tracked": True, "generation": 1}


def test_gc_info_direct(py: FakePython) -> None:
    obj = py.value([1, 2])
    session = session_of(py)
    mem = session.memory()
    info = gc_info(mem, session.runtime(mem), obj, True)
    assert info.tracked and info.generation == 0 and not info.collecting and info.note is None
    assert gc_info(mem, session.runtime(mem), obj, False).tracked is False


def _chain(length: int) -> tuple[FakeTarget, int, list[int]]:
    """A circular generation list: head <-> node 0 <-> ... <-> node length-1 <-> head."""
    target = FakeTarget()
    base = 0x7F10_0000_0000
    target.map(base, 16 * (length + 1))
    head, nodes = base, [base + 16 * (i + 1) for i in range(length)]
    ring = [head, *nodes]
    for i, node in enumerate(ring):
        target.write_u64(node, ring[(i + 1) % len(ring)])
        target.write_u64(node + 8, ring[i - 1])
    return target, head, nodes


@pytest.mark.parametrize(("position", "found"), [(0, True), (10, True), (-1, True), (-500, True), ("middle", False)])
def test_the_walk_goes_both_ways_within_a_budget(position: int | str, found: bool) -> None:
    """Old objects (near the front) are found through _gc_prev, young ones through _gc_next;
    one in the middle of a huge generation gets 'generation unknown' after MAX_GC_STEPS reads."""
    length = 3 * gc.MAX_GC_STEPS
    target, head, nodes = _chain(length)
    node = nodes[length // 2] if position == "middle" else nodes[int(position)]
    mem = Memory(target)
    info = gc._find_head(mem, node, target.peek_u64(node), {head: 2}, collecting=False)
    if found:
        assert (info.tracked, info.generation) == (True, 2), info
    else:
        assert info.generation is None and "walk budget" in str(info.note), info
    assert target.read_calls <= gc.MAX_GC_STEPS + 64  # bounded, whatever the generation's size
