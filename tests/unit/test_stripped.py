"""Interpreters without DWARF and without .symtab (issue 11, F1-F6), on fake images of every layout.

A strip-all libpython keeps only its exported symbols: pymalloc's arena
table, ``_PyObject`` and the allocator functions are statics and vanish, and
nobody names the C function that writes into a watched object. ``strip`` below
removes exactly those symbols from a fake image.
"""

from __future__ import annotations

import json
import struct

import pytest

from pylife.commands import execute
from pylife.cpython import liveness
from pylife.frame_symbols import FrameSymbols
from pylife.linkmap import load_bases
from pylife.record import events as ev
from pylife.session import Session
from pylife.symbols import static_symbol, symbol_inventory
from pylife.target import Memory, NativeFrame

from .builders import FakeObmalloc, FakePython
from .support import info_json, run_json
from .test_recorder import float_in_pool, kinds, watch, watch_of

STATICS = ("arenas", "maxarenas", "arena_map_root", "_PyObject", "_PyMem_Debug", "obmalloc_state_main", "allocators",
           "_PyObject_Malloc", "_PyMem_RawMalloc", "_PyMem_DebugMalloc", "_PyMem_DebugRawMalloc", "_PyObject_MiMalloc",
           "tracemalloc_malloc_gil", "tracemalloc_malloc", "tracemalloc_traces")
TCACHE_KEY = 0x1234_5678_9ABC_DEF0


def strip(py: FakePython) -> None:
    """What `strip --strip-all` leaves: the exported symbols only."""
    for name in STATICS:
        py.t.symbols.pop(name, None)


def unnamed(py: FakePython, offset: int) -> NativeFrame:
    """A libpython frame as both adapters name it without .symtab."""
    path = next(m.path for m in py.t.module_list if "libpython" in m.path)
    name = path.rsplit("/", 1)[-1]
    return NativeFrame(0x7F00_0000_0000 + offset, f"{name}+{offset:#x}", None, None, path)


# ---- F1: pymalloc's free-list write, recognised by its value --------------------------------


def test_pymalloc_free_is_recognised_before_the_pool_is_updated(py: FakePython) -> None:
    obj, pool = float_in_pool(py)
    strip(py)
    session, handle, _ = watch(py, obj)
    assert py.t.hit(handle, 0, [unnamed(py, 0x1000)]) is False
    # pymalloc_free: *(block **)p = pool->freeblock, and the watchpoint fires
    # before pool->freeblock = p: the pool does not list the block yet.
    head = pool.freeblock
    assert head != 0 and head != obj
    assert py.t.hit(handle, head, [unnamed(py, 0x2000)]) is False
    event = session.recorder.history_of(obj).events[-1]
    assert event.kind == ev.ALLOCATOR and event.message is not None and "free-list head" in event.message
    assert watch_of(session, obj).phase == "freed"
    pool.free(obj)  # now pymalloc updates the pool
    # The use after free (an incref through the stale pointer) is seen and stops.
    assert py.t.hit(handle, head + 1, [unnamed(py, 0x3000)]) is True
    assert kinds(session, obj) == [ev.ZERO, ev.ALLOCATOR, ev.USE_AFTER_FREE]


def test_last_block_of_a_full_pool_links_null(py: FakePython) -> None:
    """A pool with no free block: the freed block's link is NULL (written over refcount 0: no event),
    and a later write of anything else is not the allocator's."""
    pool = py.pool(32)
    obj = py.new_object(py.types["float"], 24, refcnt=1, arena=pool)
    strip(py)
    session, handle, _ = watch(py, obj)
    py.t.hit(handle, 0, [unnamed(py, 0x1000)])
    assert py.t.hit(handle, 0, [unnamed(py, 0x2000)]) is False  # NULL link: unchanged
    pool.free(obj)
    assert py.t.hit(handle, 0x4141, [unnamed(py, 0x3000)]) is True
    assert kinds(session, obj) == [ev.ZERO, ev.USE_AFTER_FREE]


def test_reuse_by_pymalloc_is_still_a_reuse(py: FakePython) -> None:
    obj, pool = float_in_pool(py)
    strip(py)
    session, handle, _ = watch(py, obj)
    py.t.hit(handle, 0, [unnamed(py, 0x1000)])
    head = pool.freeblock
    py.t.hit(handle, head, [unnamed(py, 0x2000)])
    pool.free(obj)
    # The free list hands the block out again (the head was this block), then a new float is written.
    pool.reuse()
    assert py.t.hit(handle, 1, [unnamed(py, 0x4000)]) is False
    assert kinds(session, obj)[-1] == ev.REUSE and obj not in session.recorder.watches


# ---- F2: glibc's tcache/fastbin writes (safe-linking), recognised by their value -----------


def _big_bytes(py: FakePython, heap: FakeObmalloc) -> int:
    obj = heap.new_object(py.types["bytes"], 33 + 600)
    py.t.write_i64(obj + 16, 600)
    return obj


def _tcache_put(py: FakePython, user: int, next_user: int) -> int:
    """glibc 2.36 tcache_put(): e->key first, then e->next = PROTECT_PTR(&e->next, next)."""
    py.t.write_u64(user + 8, TCACHE_KEY)
    return next_user ^ (user >> 12)


@pytest.mark.parametrize("bin_head", ["empty", "another chunk"])
def test_freeing_a_large_object_to_the_tcache_does_not_stop(py: FakePython, bin_head: str) -> None:
    heap = FakeObmalloc(py)
    obj = _big_bytes(py, heap)
    other = _big_bytes(py, heap)  # a chunk of the same size already in the bin
    strip(py)
    session, handle, _ = watch(py, obj)
    assert py.t.hit(handle, 0, [unnamed(py, 0x1000)]) is False
    mangled = _tcache_put(py, obj, other if bin_head == "another chunk" else 0)
    libc = NativeFrame(0x7E00_0000_1234, "libc.so.6+0x1234", None, None, "/lib/x86_64-linux-gnu/libc.so.6")
    assert py.t.hit(handle, mangled, [libc]) is False
    event = session.recorder.history_of(obj).events[-1]
    assert event.kind == ev.ALLOCATOR and "tcache/fastbin link" in (event.message or "")
    # malloc hands it out again (tcache_get clears the key), a new bytes object moves in.
    py.t.write_u64(obj + 8, py.types["bytes"])
    assert py.t.hit(handle, 1, [unnamed(py, 0x5000)]) is False
    assert kinds(session, obj) == [ev.ZERO, ev.ALLOCATOR, ev.REUSE]


def test_use_after_free_of_a_tcache_chunk_stops(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    obj = _big_bytes(py, heap)
    strip(py)
    session, handle, _ = watch(py, obj)
    py.t.hit(handle, 0, [unnamed(py, 0x1000)])
    mangled = _tcache_put(py, obj, 0)
    py.t.hit(handle, mangled, [unnamed(py, 0x2000)])
    assert py.t.hit(handle, mangled + 1, [unnamed(py, 0x3000)]) is True  # Py_INCREF through a stale pointer
    assert kinds(session, obj)[-1] == ev.USE_AFTER_FREE
    # Not a safe-linked pointer to a chunk of the same size: not the allocator.
    assert py.t.hit(handle, 1, [unnamed(py, 0x3000)]) is True


def test_unsorted_bin_links_are_the_allocator(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    obj = _big_bytes(py, heap)
    strip(py)
    session, handle, _ = watch(py, obj)
    py.t.hit(handle, 0, [unnamed(py, 0x1000)])
    heap.free_chunk(obj)  # fd/bk into main_arena, the next chunk's PREV_INUSE cleared
    assert py.t.hit(handle, py.t.peek_u64(obj), [unnamed(py, 0x2000)]) is False
    assert kinds(session, obj) == [ev.ZERO, ev.ALLOCATOR]


# ---- F3 / F4: verdicts without pymalloc's statics ------------------------------------------


def test_freed_pool_block_is_freed_without_the_arena_table(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    alive = heap.new_object(py.types["float"], 24)
    dead = heap.new_object(py.types["float"], 24)
    heap.free_object(dead, py.types["float"], 24)
    strip(py)
    freed = info_json(py, dead)
    assert freed["verdict"] == liveness.FREED, freed
    assert freed["allocator"]["block_state"] == "free"
    if py.key <= (3, 11):
        assert freed["allocator"]["pool_found_by"] == "shape" and any("shape" in r for r in freed["reasons"])
    live = info_json(py, alive)
    assert live["verdict"] == liveness.ALIVE and live["allocator"]["block_state"] == "allocated", live


def test_object_outside_any_known_allocator_is_never_alive_without_evidence(py: FakePython) -> None:
    """A valid header in memory that no pool or chunk header vouches for: UNKNOWN (3.8-3.11 stripped)."""
    FakeObmalloc(py)
    strip(py)
    obj = py.float(2.5)  # the fake's plain heap: neither a pool nor a glibc chunk
    data = info_json(py, obj)
    if py.key <= (3, 11):
        assert data["verdict"] == liveness.UNKNOWN, data
        assert any("cannot tell alive from freed" in r for r in data["reasons"]), data
    assert data["verdict"] != liveness.FREED


def test_freed_large_object_is_freed_without_symbols(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    obj = _big_bytes(py, heap)
    heap.free_chunk(obj)
    strip(py)
    assert info_json(py, obj)["verdict"] == liveness.FREED


def test_lto_renamed_statics_are_found(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    dead = heap.new_object(py.types["float"], 24)
    heap.free_object(dead, py.types["float"], 24)
    for name in STATICS:  # Debian's LTO build: arenas.lto_priv.0, _PyObject.lto_priv.0, ...
        if name in py.t.symbols:
            py.t.symbols[f"{name}.lto_priv.0"] = py.t.symbols.pop(name)
    assert static_symbol(py.t, "_PyObject_Malloc") == py.t.symbols["_PyObject_Malloc.lto_priv.0"]
    data = info_json(py, dead)
    assert data["verdict"] == liveness.FREED and data["allocator"]["name"] == "pymalloc", data
    assert "pool_found_by" not in data["allocator"]  # the real arena table was read


# ---- F5: unnamed frames, the same in both debuggers -----------------------------------------


def test_unnamed_frames_are_module_plus_offset_from_the_load_base() -> None:
    libpython = "/opt/py/lib/libpython3.12.so.1.0"
    symbols = FrameSymbols(lambda: {libpython: 0x7F00_0000_0000, "/bin/python3.12": 0x5555_5555_4000})
    lookup = symbols.unwind()
    gdb_style = lookup(0x7F00_001A_2B3C, lambda: (None, None, None, libpython))
    lldb_style = FrameSymbols(lambda: {libpython: 0x7F00_0000_0000}).unwind()(
        0x7F00_001A_2B3C, lambda: ("___lldb_unnamed_symbol1234", None, None, libpython))
    assert gdb_style[0] == lldb_style[0] == "libpython3.12.so.1.0+0x1a2b3c"
    assert lookup(0x5555_5555_5000, lambda: ("??", None, None, "/bin/python3.12"))[0] == "python3.12+0x1000"
    assert lookup(0x1234, lambda: (None, None, None, None))[0] == "0x1234"
    assert lookup(0x7F00_0000_0010, lambda: ("Py_RunMain", "x.c", 3, libpython))[0] == "Py_RunMain"
    # A GCC clone: lldb keeps the clone number, gdb drops it.
    assert lookup(0x7F00_0000_0020, lambda: ("pymain_run_python.constprop.0", None, None, libpython))[0] \
        == "pymain_run_python.constprop"


def test_load_bases_come_from_the_link_map(py: FakePython) -> None:
    t = py.t
    area = 0x6000_0000_0000
    t.map(area, 0x1000)
    r_debug, main, lib, name = area, area + 0x100, area + 0x200, area + 0x300
    t.write(name, b"/opt/py/lib/libpython3.12.so.1.0\0")
    t.write(area + 0x380, b"\0")
    t.write(r_debug, struct.pack("<iiQ", 1, 0, main))  # {r_version; r_map}
    t.write(main, struct.pack("<QQQQQ", 0x5555_5555_4000, area + 0x380, 0, lib, 0))
    t.write(lib, struct.pack("<QQQQQ", 0x7F00_0000_0000, name, 0, main, main))  # l_next loops: cycle-safe
    t.symbols["_r_debug"] = r_debug
    assert load_bases(t, Memory(t)) == {"": 0x5555_5555_4000, "/opt/py/lib/libpython3.12.so.1.0": 0x7F00_0000_0000}
    del t.symbols["_r_debug"]
    assert load_bases(t, Memory(t)) == {}


# ---- F6: pylife version names the symbols it found ------------------------------------------


def test_version_says_which_symbols_were_found(py: FakePython) -> None:
    FakeObmalloc(py)
    py.t.symbols["PyObject_Free"] = py.static.alloc(16)
    py.t.debug_info.add("PyObject_Free")
    full = run_json(py, ["version"])["symbols"]
    assert (full["dwarf"], full["symtab"], full["dynamic"], full["summary"], full["degraded"]) == (
        True, True, True, "DWARF and .symtab", [])
    py.t.debug_info.clear()
    strip(py)
    inventory = symbol_inventory(py.t)
    assert (inventory.dwarf, inventory.symtab, inventory.dynamic) == (False, False, True)
    data = run_json(py, ["version"])["symbols"]
    assert data["summary"] == "dynamic symbols only"
    assert any("module+offset" in line for line in data["degraded"])
    assert any("recognised by the value written" in line for line in data["degraded"])
    text = execute(Session(py.target), ["version"])
    assert "dynamic symbols only" in text and "warning: CPython's symbols" in text
    assert json.loads(execute(Session(py.target), ["version", "--json"]))["symbols"]["symtab"] is False


# ---- which allocator, without symbols (3.12+ _PyRuntime.allocators) -------------------------


@pytest.mark.parametrize("config", ["pymalloc", "malloc", "mimalloc", "pymalloc_debug", "malloc_debug"])
def test_allocator_is_told_by_which_domains_share_a_malloc(py: FakePython, config: str) -> None:
    if "_PyRuntimeState.allocators_standard_obj" not in py.off:
        pytest.skip("the allocator tables are statics before 3.12")
    FakeObmalloc(py)
    strip(py)
    standard_obj = py.runtime + py.o("_PyRuntimeState.allocators_standard_obj")
    debug_obj = py.runtime + py.o("_PyRuntimeState.allocators_debug_obj")
    raw, pymalloc, mi_mem, mi_obj, hooks_malloc = 0x7E00_1000, 0x7E00_2000, 0x7E00_3000, 0x7E00_4000, 0x7E00_5000
    name, _, debug = config.partition("_")
    mallocs = {"pymalloc": (raw, pymalloc, pymalloc), "malloc": (raw, raw, raw), "mimalloc": (raw, mi_mem, mi_obj)}[name]
    for index, malloc in enumerate(mallocs):  # raw, mem, obj
        entry, wrapped = standard_obj - (2 - index) * 40, debug_obj - (2 - index) * 48
        if debug:  # obmalloc.c: the hooks' ctx is their debug_alloc_api_t, which holds the wrapped allocator
            py.t.write_u64(entry, wrapped)
            py.t.write_u64(entry + 8, hooks_malloc)
            py.t.write_u64(wrapped + 8, 0)
            py.t.write_u64(wrapped + 16, malloc)
        else:
            py.t.write_u64(entry, 0)
            py.t.write_u64(entry + 8, malloc)
    facts = run_json(py, ["info", hex(py.none)])["allocator"]
    assert (facts["name"], facts["debug_hooks"]) == (name, bool(debug)), facts
