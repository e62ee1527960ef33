"""pylife.cpython.allocators on fake images of every layout: which allocator, arenas, pools, headers, chunks."""

from __future__ import annotations

import pytest

from pylife.cpython import allocators as al
from pylife.cpython import debug_hooks
from pylife.session import Session
from pylife.target import Memory

from .builders import ARENA_BASE, HEAP_BASE, FakeObmalloc, FakePython
from .support import run_json

ALLOCATORS = [("pymalloc", False), ("pymalloc", True), ("malloc", False), ("malloc", True)]


def _runtime(py: FakePython):  # type: ignore[no-untyped-def]
    session = Session(py.target)
    mem = session.memory()
    return session, mem, session.runtime(mem)


@pytest.mark.parametrize(("name", "hooks"), ALLOCATORS, ids=[f"{n}{'-debug' if h else ''}" for n, h in ALLOCATORS])
def test_detects_the_object_allocator(py: FakePython, name: str, hooks: bool) -> None:
    FakeObmalloc(py, allocator=name, debug_hooks=hooks)
    _session, mem, runtime = _runtime(py)
    found = al.detect_allocator(py.target, mem, runtime)
    assert (found.name, found.debug_hooks) == (name, hooks)
    assert found.label == (f"debug hooks over {name}" if hooks else name)


def test_detects_the_allocator_under_tracemalloc(py: FakePython) -> None:
    FakeObmalloc(py, debug_hooks=True, tracemalloc=True)
    _session, mem, runtime = _runtime(py)
    found = al.detect_allocator(py.target, mem, runtime)
    assert (found.name, found.debug_hooks) == ("pymalloc", True)
    assert "tracemalloc" in found.how


def test_unknown_allocator_without_symbols(py: FakePython) -> None:
    _session, mem, runtime = _runtime(py)
    found = al.detect_allocator(py.target, mem, runtime)
    assert found.name == "unknown" and found.debug_hooks is None and found.uses_pymalloc is None


def test_mimalloc_is_named(py: FakePython) -> None:
    FakeObmalloc(py, allocator="mimalloc")
    _session, mem, runtime = _runtime(py)
    assert al.detect_allocator(py.target, mem, runtime).name == "mimalloc"


def test_arena_membership(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    block = heap.pool(64).alloc(64)
    _session, mem, runtime = _runtime(py)
    states, why = al.obmalloc_states(py.target, mem, runtime)
    assert states and why is None
    assert al.in_arena(mem, runtime.layout, states, block) == (True, ARENA_BASE)
    assert al.in_arena(mem, runtime.layout, states, HEAP_BASE + 0x100)[0] is False
    assert al.in_arena(mem, runtime.layout, [], block) == (None, None)


def test_no_state_without_symbols(py: FakePython) -> None:
    _session, mem, runtime = _runtime(py)
    states, why = al.obmalloc_states(py.target, mem, runtime)
    if runtime.layout.key >= (3, 12):
        return  # 3.12 reads the interpreter's embedded state: always "found" (and empty)
    assert states == [] and why


def test_radix_tree_parameters(py: FakePython) -> None:
    tree = al.radix_tree(_runtime(py)[2].layout)
    if py.key <= (3, 9):
        assert tree is None
    elif py.key == (3, 10):
        assert (tree.top_shift, tree.mid_shift, tree.bot_bits) == (38, 28, 8)  # type: ignore[union-attr]
    else:
        assert (tree.top_shift, tree.mid_shift, tree.bot_bits) == (49, 34, 14)  # type: ignore[union-attr]


def test_pool_block_states(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    pool = heap.pool(48)
    first, second, third = pool.alloc(48), pool.alloc(48), pool.alloc(48)
    pool.free(second)
    mem = Memory(py.target)
    layout = _runtime(py)[2].layout
    assert al.pool_block(mem, layout, first + 16).state is al.BlockState.ALLOCATED  # type: ignore[union-attr]
    assert al.pool_block(mem, layout, first + 16).block == first  # type: ignore[union-attr]
    freed = al.pool_block(mem, layout, second)
    assert freed is not None and freed.state is al.BlockState.FREE and freed.size == 48 and "free list" in freed.why
    never = al.pool_block(mem, layout, third + 48)
    assert never is not None and never.state is al.BlockState.NEVER_USED
    assert al.pool_block(mem, layout, pool.address + 8) is None  # inside the pool header
    # The old entry point keeps its behaviour.
    assert al.block_state(mem, layout, second) == (al.BlockState.FREE, 48)
    assert al.block_state(mem, layout, first) == (al.BlockState.ALLOCATED, 48)


def test_empty_pool_blocks_are_free(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    pool = heap.pool(32)
    block = pool.alloc(32)
    pool.free(block)
    found = al.pool_block(Memory(py.target), _runtime(py)[2].layout, block)
    assert found is not None and found.state is al.BlockState.FREE


def test_pool_header_with_nonsense_is_not_a_pool(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    pool = heap.pool(32)
    py.t.write_u32(pool.address + 36, 999)  # szidx
    assert al.pool_block(Memory(py.target), _runtime(py)[2].layout, pool.address + 64) is None


def test_debug_header(py: FakePython) -> None:
    heap = FakeObmalloc(py, debug_hooks=True)
    obj = heap.new_object(py.types["float"], 24)
    mem = Memory(py.target)
    header = debug_hooks.debug_header(mem, obj)
    assert header is not None and header.valid and header.api == "o" and header.requested == 24
    assert header.trailer_ok is True and not header.dead
    assert not debug_hooks.dead_fill(mem, obj)
    py.t.write_u8(obj + 24, 0)  # an overflow into the trailing pad
    assert debug_hooks.debug_header(Memory(py.target), obj).trailer_ok is False  # type: ignore[union-attr]
    heap.free_object(obj, py.types["float"], 24)
    dead = debug_hooks.debug_header(Memory(py.target), obj)
    assert dead is not None and not dead.valid and dead.api == "\\xdd" and dead.dead
    assert debug_hooks.dead_fill(Memory(py.target), obj)


def test_glibc_chunks(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    live, freed, cached = heap.malloc(1000), heap.malloc(2000), heap.malloc(600)
    heap.malloc(100)  # a guard after the last one
    heap.free_chunk(freed)
    heap.free_chunk(cached, tcache=True)
    mem = Memory(py.target)
    chunk = al.glibc_chunk(py.target, mem, live)
    assert chunk is not None and chunk.in_use is True and chunk.size == 1008 and not chunk.tcache
    chunk = al.glibc_chunk(py.target, mem, freed)
    assert chunk is not None and chunk.in_use is False and "PREV_INUSE" in chunk.why
    chunk = al.glibc_chunk(py.target, mem, cached)
    assert chunk is not None and chunk.in_use is True and chunk.tcache
    assert al.glibc_chunk(py.target, mem, live + 8) is None  # misaligned
    assert al.glibc_chunk(py.target, mem, live + 16) is None  # no header there


def test_pymalloc_command_counts_what_was_built(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    for _ in range(5):
        heap.pool(48).alloc(48)
    freed = heap.pool(48).alloc(48)
    heap.pool(48).free(freed)
    for _ in range(3):
        heap.pool(512).alloc(512)
    data = run_json(py, ["pymalloc"])
    assert data["arenas"] == 1 and data["pools"]["used"] == 2 and data["pools"]["empty"] == 0
    classes = {c["size"]: c for c in data["classes"]}
    pool_size = 4096 if py.key <= (3, 9) else 16384
    assert classes[48] == {"size": 48, "pools": 1, "blocks_used": 5, "blocks_free": (pool_size - 48) // 48 - 5,
                           "bytes_used": 240}
    assert classes[512]["blocks_used"] == 3
    assert data["pools"]["total"] == data["pools"]["used"] + data["pools"]["untouched"]


def test_pymalloc_command_without_state(py: FakePython) -> None:
    data = run_json(py, ["pymalloc"])
    if py.key >= (3, 12):
        assert data.get("arenas") == 0 or "error" in data
    else:
        assert "error" in data and "pymalloc" in data["error"]


def test_pymalloc_command_on_hostile_state(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    pool = heap.pool(64)
    pool.alloc(64)
    py.t.write_u32(pool.address + 36, 77)  # a corrupt size class index
    session, mem, runtime = _runtime(py)
    states, _why = al.obmalloc_states(py.target, mem, runtime)
    data = run_json(py, ["pymalloc"], session)
    assert any("corrupt size class" in note for note in data["notes"]), data
    py.t.write_u32(states[0].maxarenas_var, 0xFFFF_FFFF)  # beyond the arena objects' mapping
    data = run_json(py, ["pymalloc"])
    assert "error" not in data and any("implausible" in note for note in data["notes"]), data
