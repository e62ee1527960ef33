"""CPython's allocators, read from outside (Objects/obmalloc.c; cpython-internals.md §5-6).

- Which allocator serves the object domain (pymalloc, debug hooks over
  pymalloc/malloc, malloc, mimalloc), from the ``PyMemAllocatorEx`` the
  runtime dispatches through (§5.4).
- Whether an address lies in a pymalloc arena: ``arenas[]``/``maxarenas``
  (3.8/3.9 ``address_in_range``), the radix tree ``arena_map_root``
  (3.10/3.11 statics), the per-interpreter ``struct _obmalloc_state``
  (embedded in 3.12, a pointer in 3.13); then the pool, size class and block
  state (free list, never handed out, allocated).
- The ``PYTHONMALLOC=debug`` header (requested size, API byte, pad bytes) and
  the 0xDD fill of freed blocks (§6): in debug_hooks.py.
- glibc's chunk header for blocks that came from ``malloc``: in glibc_malloc.py
  (re-exported here).

``block_state`` is the small, old entry point used by the watch recorder on
blocks it knows came from pymalloc; keep its behaviour.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Any

from ..errors import PylifeError, UnreadableMemory
from ..symbols import static_symbol
from ..target import Memory, Target
from .allocator_shape import allocator_by_shape
from .debug_hooks import DEBUG_HEADER
from .glibc_malloc import Chunk, glibc_chunk
from .layout import Layout
from .runtime import Runtime, interpreters, main_interpreter

__all__ = ["Chunk", "glibc_chunk"]  # glibc_malloc's names, used through this module

SMALL_REQUEST_THRESHOLD = 512
POOL_OVERHEAD = 48  # sizeof(struct pool_header), all versions
ALIGNMENT = 16
NB_SMALL_SIZE_CLASSES = SMALL_REQUEST_THRESHOLD // ALIGNMENT

MAX_ARENAS = 1 << 20  # arena_object array entries we are willing to read
MAX_INTERPRETER_STATES = 16
Py_RTFLAGS_USE_MAIN_OBMALLOC = 1 << 5  # Include/cpython/pystate.h (3.12+)


class BlockState(enum.Enum):
    ALLOCATED = "allocated"
    FREE = "free"  # on the pool's free list
    NEVER_USED = "never used"  # beyond the pool's nextoffset
    UNKNOWN = "unknown"


def pool_size(layout: Layout) -> int:
    """POOL_SIZE: 4 KiB up to 3.9, 16 KiB from 3.10 (obmalloc.c POOL_BITS)."""
    return 4096 if layout.key <= (3, 9) else 16384


def arena_size(layout: Layout) -> int:
    """ARENA_SIZE: 256 KiB up to 3.9, 1 MiB from 3.10 (obmalloc.c ARENA_BITS)."""
    return 256 << 10 if layout.key <= (3, 9) else 1 << 20


def block_state(mem: Memory, layout: Layout, block: int) -> tuple[BlockState, int | None]:
    """(state, size class in bytes) of the pymalloc block starting at ``block``."""
    size_of_pool = pool_size(layout)
    pool = block & ~(size_of_pool - 1)
    try:
        header = mem.read(pool, POOL_OVERHEAD)
    except UnreadableMemory:
        return BlockState.UNKNOWN, None  # the pool (or its arena) was released
    count, freeblock = struct.unpack_from("<IxxxxQ", header, 0)
    szidx, nextoffset, maxnextoffset = struct.unpack_from("<III", header, 36)
    if szidx >= SMALL_REQUEST_THRESHOLD // ALIGNMENT or nextoffset > size_of_pool or maxnextoffset > size_of_pool:
        return BlockState.UNKNOWN, None
    size = (szidx + 1) * ALIGNMENT
    offset = block - pool
    if offset < POOL_OVERHEAD or (offset - POOL_OVERHEAD) % size:
        return BlockState.UNKNOWN, size
    if offset >= nextoffset:
        return BlockState.NEVER_USED, size
    node = freeblock
    for _ in range(size_of_pool // size + 1):
        if node == 0:
            break
        if node == block:
            return BlockState.FREE, size
        if not pool <= node < pool + size_of_pool:
            return BlockState.UNKNOWN, size
        try:
            node = mem.ptr(node)
        except UnreadableMemory:
            return BlockState.UNKNOWN, size
    return (BlockState.ALLOCATED if count else BlockState.UNKNOWN), size


# ---- which allocator --------------------------------------------------------------

# The obj domain's malloc, by the .symtab name of the function (§5.4).
_MALLOC_FUNCTIONS = {
    "_PyObject_Malloc": "pymalloc",
    "_PyMem_RawMalloc": "malloc",
    "_PyObject_MiMalloc": "mimalloc",  # 3.13+
    "_PyMem_MiMalloc": "mimalloc",
}
_DEBUG_FUNCTIONS = ("_PyMem_DebugMalloc", "_PyMem_DebugRawMalloc")
# tracemalloc's obj-domain hook (Python/tracemalloc.c): tracemalloc_malloc_gil up to 3.14,
# tracemalloc_malloc in 3.15 (one hook; before, tracemalloc_malloc was the inner helper).
_TRACEMALLOC_FUNCTIONS = ("tracemalloc_malloc_gil", "tracemalloc_malloc")


def _tracemalloc_saved_obj(target: Target, runtime: Runtime) -> int | None:
    L = runtime.layout
    if L.has("_tracemalloc_runtime_state.allocators_obj"):
        return runtime.address + L["_PyRuntimeState.tracemalloc"] + L["_tracemalloc_runtime_state.allocators_obj"]
    saved = _symbol(target, "allocators")  # static struct {mem, raw, obj} allocators; (_tracemalloc.c)
    return saved + 2 * 40 if saved is not None else None


@dataclass(frozen=True)
class Allocator:
    name: str  # "pymalloc", "malloc", "mimalloc" or "unknown"
    debug_hooks: bool | None  # PYTHONMALLOC=debug / *_debug, or a Py_DEBUG build; None = unknown
    how: str  # where this was read

    @property
    def label(self) -> str:
        if self.debug_hooks:
            return f"debug hooks over {self.name}"
        return self.name

    @property
    def uses_pymalloc(self) -> bool | None:
        return None if self.name == "unknown" else self.name == "pymalloc"

    @property
    def header(self) -> int:
        """Bytes the debug hooks put before the data (0 without hooks)."""
        return DEBUG_HEADER if self.debug_hooks else 0


@dataclass(frozen=True)
class ObmallocState:
    """Where one pymalloc instance keeps its arenas (per interpreter from 3.12)."""

    arenas_var: int  # address of `struct arena_object *arenas`
    maxarenas_var: int  # address of `uint maxarenas`
    map_root: int | None  # address of `arena_map_top_t arena_map_root` (3.10+)
    interp: int | None  # owning interpreter (3.12+)


@dataclass(frozen=True)
class _Statics:
    """What cannot change while the process lives: its allocator and static symbols."""

    allocator: Allocator
    states: tuple[ObmallocState, ...]  # <= 3.11: the one static state
    why_no_state: str | None
    main_state: int | None  # 3.13: &obmalloc_state_main


_cache: dict[int, tuple[Runtime, _Statics]] = {}


def _symbol(target: Target, name: str) -> int | None:
    return static_symbol(target, name)  # obmalloc.c's statics; LTO may rename them (name.lto_priv.N)


def _obj_domain(target: Target, runtime: Runtime) -> tuple[int | None, int | None, str]:
    """(address of the obj domain's PyMemAllocatorEx, of the debug hooks' obj entry, source)."""
    L = runtime.layout
    if L.has("_PyRuntimeState.allocators_standard_obj"):
        # 3.12+ pycore_pymem.h: _PyRuntime.allocators.standard.obj / .debug.obj
        return (runtime.address + L["_PyRuntimeState.allocators_standard_obj"],
                runtime.address + L["_PyRuntimeState.allocators_debug_obj"], "_PyRuntime.allocators")
    # <= 3.11 obmalloc.c: static PyMemAllocatorEx _PyObject; static struct
    # {debug_alloc_api_t raw, mem, obj} _PyMem_Debug (each 8 + 40 bytes).
    standard = _symbol(target, "_PyObject")
    debug = _symbol(target, "_PyMem_Debug")
    return standard, (debug + 2 * 48 if debug is not None else None), "_PyObject / _PyMem_Debug"


def detect_allocator(target: Target, mem: Memory, runtime: Runtime) -> Allocator:
    return _statics(target, mem, runtime).allocator


def _detect_allocator(target: Target, mem: Memory, runtime: Runtime) -> Allocator:
    standard, debug, how = _obj_domain(target, runtime)
    if standard is None:
        return Allocator("unknown", None, "no _PyObject symbol (stripped libpython?)")
    try:
        malloc = mem.ptr(standard + 8)  # PyMemAllocatorEx {ctx, malloc, calloc, realloc, free}
    except UnreadableMemory:
        return Allocator("unknown", None, f"{how} unreadable")
    names = {addr: name for name in (*_MALLOC_FUNCTIONS, *_DEBUG_FUNCTIONS, *_TRACEMALLOC_FUNCTIONS)
             if (addr := _symbol(target, name))}
    if not names:
        shaped = allocator_by_shape(mem, standard, debug) if debug is not None and runtime.layout.has(
            "_PyRuntimeState.allocators_standard_obj") else None
        if shaped is not None:
            return Allocator(shaped[0], shaped[1], f"{how}: which domains share a malloc (no symbols)")
        return Allocator("unknown", None, "the allocator functions' symbols were not found (stripped libpython?)")
    traced = names.get(malloc) in _TRACEMALLOC_FUNCTIONS
    if traced:
        # tracemalloc wraps whatever allocator was installed and keeps it in
        # `allocators.obj` (<= 3.11 _tracemalloc.c static; 3.12+ _PyRuntime.tracemalloc).
        wrapped = _tracemalloc_saved_obj(target, runtime)
        try:
            malloc = mem.ptr(wrapped + 8) if wrapped is not None else 0
        except UnreadableMemory:
            malloc = 0
        how = f"{how} (under tracemalloc's hooks)"
    hooks = False
    if names.get(malloc) in _DEBUG_FUNCTIONS:
        hooks = True
        try:  # debug_alloc_api_t {char api_id; PyMemAllocatorEx alloc}: the wrapped allocator
            malloc = mem.ptr(debug + 8 + 8) if debug is not None else 0
        except UnreadableMemory:
            malloc = 0
    name = _MALLOC_FUNCTIONS.get(names.get(malloc, ""), "unknown")
    return Allocator(name, hooks if name != "unknown" else None, f"obj domain malloc read from {how}")


def _statics(target: Target, mem: Memory, runtime: Runtime) -> _Statics:
    cached = _cache.get(id(runtime))
    if cached is not None and cached[0] is runtime:
        return cached[1]
    allocator = _detect_allocator(target, mem, runtime)
    L = runtime.layout
    if L.has("PyInterpreterState.obmalloc"):
        main = _symbol(target, "obmalloc_state_main") if L["PyInterpreterState.obmalloc_size"] == 8 else None
        statics = _Statics(allocator, (), None, main)
    else:
        states, why = _static_state(target, runtime)
        statics = _Statics(allocator, tuple(states), why, None)
    if len(_cache) > 8:
        _cache.clear()
    _cache[id(runtime)] = (runtime, statics)
    return statics


def _static_state(target: Target, runtime: Runtime) -> tuple[list[ObmallocState], str | None]:
    """<= 3.11: file statics of Objects/obmalloc.c (.symtab only)."""
    L = runtime.layout
    arenas, maxarenas = _symbol(target, "arenas"), _symbol(target, "maxarenas")
    root = _symbol(target, "arena_map_root") if L.key >= (3, 10) else None
    if arenas is None or maxarenas is None or (L.key >= (3, 10) and root is None):
        return [], "pymalloc's statics (arenas, maxarenas, arena_map_root) not found: no .symtab?"
    return [ObmallocState(arenas, maxarenas, root, None)], None


def _interpreter_states(mem: Memory, runtime: Runtime, main_state: int | None) -> tuple[list[ObmallocState], str | None]:
    """3.12+: one state per interpreter that has its own (read anew: interpreters come and go)."""
    L = runtime.layout
    states: list[ObmallocState] = []
    seen: set[int] = set()
    try:
        main = main_interpreter(mem, runtime)
        interps = [main, *(i for i in interpreters(mem, runtime) if i != main)]
    except PylifeError as exc:
        return [], f"no interpreter to read obmalloc state from: {exc}"
    for interp in interps[:MAX_INTERPRETER_STATES]:
        base = _state_of(mem, runtime, interp, main_state if interp == main else None, is_main=interp == main)
        if base is None or base in seen:
            continue
        seen.add(base)
        states.append(ObmallocState(base + L["_obmalloc_state.arenas"], base + L["_obmalloc_state.maxarenas"],
                                    base + L["_obmalloc_state.arena_map_root"], interp))
    return states, (None if states else "no readable obmalloc state")


def _state_of(mem: Memory, runtime: Runtime, interp: int, static: int | None, is_main: bool) -> int | None:
    """struct _obmalloc_state of an interpreter (pycore_interp.h; obmalloc.c _PyMem_init_obmalloc)."""
    L = runtime.layout
    if L["PyInterpreterState.obmalloc_size"] != 8:
        return interp + L["PyInterpreterState.obmalloc"]  # 3.12: embedded
    if static is not None:
        # 3.13: the main interpreter (and those with Py_RTFLAGS_USE_MAIN_OBMALLOC)
        # point at the static obmalloc_state_main.
        return static
    try:
        if not is_main and mem.u64(interp + L["PyInterpreterState.feature_flags"]) & Py_RTFLAGS_USE_MAIN_OBMALLOC:
            return None
        pointer = mem.ptr(interp + L["PyInterpreterState.obmalloc"])
    except UnreadableMemory:
        return None
    return pointer or None


def obmalloc_states(target: Target, mem: Memory, runtime: Runtime) -> tuple[list[ObmallocState], str | None]:
    """Every pymalloc instance's state, or ([], why not)."""
    statics = _statics(target, mem, runtime)
    if runtime.layout.has("PyInterpreterState.obmalloc"):
        return _interpreter_states(mem, runtime, statics.main_state)
    return list(statics.states), statics.why_no_state


# ---- is it in an arena? -------------------------------------------------------------


@dataclass(frozen=True)
class RadixTree:
    """arena_map_* shifts and widths (obmalloc.c, 64-bit USE_INTERIOR_NODES)."""

    top_shift: int
    top_bits: int
    mid_shift: int
    mid_bits: int
    bot_shift: int
    bot_bits: int


def radix_tree(layout: Layout) -> RadixTree | None:
    """3.10: ADDRESS_BITS 48; 3.11+: 64 (obmalloc.c / pycore_obmalloc.h); None before 3.10."""
    if layout.key <= (3, 9):
        return None
    if layout.key == (3, 10):
        return RadixTree(38, 10, 28, 10, 20, 8)
    return RadixTree(49, 15, 34, 15, 20, 14)


def _in_arena_radix(mem: Memory, layout: Layout, root: int, address: int) -> tuple[bool, int | None]:
    """obmalloc.c arena_map_is_used(): (in use, arena base when derivable)."""
    tree = radix_tree(layout)
    assert tree is not None
    mid = mem.ptr(root + 8 * ((address >> tree.top_shift) & ((1 << tree.top_bits) - 1)))
    if not mid:
        return False, None
    bot = mem.ptr(mid + 8 * ((address >> tree.mid_shift) & ((1 << tree.mid_bits) - 1)))
    if not bot:
        return False, None
    # arena_coverage_t {int32_t tail_hi; int32_t tail_lo;}
    tail_hi, tail_lo = struct.unpack("<ii", mem.read(bot + 8 * ((address >> tree.bot_shift) & ((1 << tree.bot_bits) - 1)), 8))
    size = arena_size(layout)
    tail = address & (size - 1)
    if tail < tail_lo:  # the arena started in the previous 1 MiB window and ends at tail_lo
        return True, (address & ~(size - 1)) - size + tail_lo
    if tail >= tail_hi and tail_hi != 0:
        # arena_map_mark_used(): tail_hi is -1 for an arena aligned on the window.
        return True, (address & ~(size - 1)) + max(tail_hi, 0)
    return False, None


def _in_arena_index(mem: Memory, layout: Layout, state: ObmallocState, address: int, pool: int) -> tuple[bool, int | None]:
    """3.8/3.9 obmalloc.c address_in_range(): arenas[pool->arenaindex].address."""
    index = mem.u32(pool + 32)
    maxarenas = mem.u32(state.maxarenas_var)
    if index >= min(maxarenas, MAX_ARENAS):
        return False, None
    base = mem.ptr(mem.ptr(state.arenas_var) + 48 * index)
    if base and 0 <= address - base < arena_size(layout):
        return True, base
    return False, None


def in_arena(mem: Memory, layout: Layout, states: list[ObmallocState], address: int) -> tuple[bool | None, int | None]:
    """(is ``address`` inside a live pymalloc arena?, the arena base). None: cannot tell."""
    if not states:
        return None, None
    pool = address & ~(pool_size(layout) - 1)
    answered = False
    for state in states:
        try:
            if state.map_root is not None:
                found, base = _in_arena_radix(mem, layout, state.map_root, address)
            else:
                found, base = _in_arena_index(mem, layout, state, address, pool)
        except UnreadableMemory:
            continue  # e.g. a pool header that is not mapped: not this state
        answered = True
        if found:
            return True, base
    return (False if answered else None), None


# ---- the pool and block ---------------------------------------------------------


@dataclass(frozen=True)
class PoolBlock:
    """The pymalloc block containing an address."""

    pool: int
    arena: int | None
    szidx: int
    size: int  # block size: the size class
    block: int  # first byte of the block
    state: BlockState
    count: int  # pool->ref.count: blocks in use in this pool
    nextoffset: int
    why: str  # one line for the reasons list

    def facts(self) -> dict[str, Any]:
        return {"arena": self.arena, "pool": self.pool, "size_class": self.size, "szidx": self.szidx,
                "block": self.block, "block_state": self.state.value, "pool_blocks_used": self.count}


def pool_block(mem: Memory, layout: Layout, address: int, arena: int | None = None) -> PoolBlock | None:
    """Decode the pool header and locate the block holding ``address``; None if no sane pool."""
    psize = pool_size(layout)
    pool = address & ~(psize - 1)
    try:
        header = mem.read(pool, POOL_OVERHEAD)
    except UnreadableMemory:
        return None
    count, freeblock = struct.unpack_from("<IxxxxQ", header, 0)
    szidx, nextoffset, maxnextoffset = struct.unpack_from("<III", header, 36)
    if szidx >= NB_SMALL_SIZE_CLASSES or nextoffset > psize or maxnextoffset > psize:
        return None
    size = (szidx + 1) * ALIGNMENT
    offset = address - pool
    if offset < POOL_OVERHEAD:
        return None  # the pool header itself
    index = (offset - POOL_OVERHEAD) // size
    block = pool + POOL_OVERHEAD + index * size
    if block + size > pool + psize:
        return None  # the unusable tail of the pool
    where = f"pymalloc pool {pool:#x}, size class {size}"
    if block - pool >= nextoffset:
        return PoolBlock(pool, arena, szidx, size, block, BlockState.NEVER_USED, count, nextoffset,
                         f"block never handed out (beyond nextoffset of its pool): {where}")
    if count == 0:
        return PoolBlock(pool, arena, szidx, size, block, BlockState.FREE, count, nextoffset,
                         f"the block's pool is empty (no block in use): {where}")
    node = freeblock
    for _ in range(psize // size + 1):
        if node == 0:
            break
        if node == block:
            return PoolBlock(pool, arena, szidx, size, block, BlockState.FREE, count, nextoffset,
                             f"block is on the free list of its pymalloc pool (size class {size})")
        if not pool <= node < pool + psize:
            break  # a corrupt free list: stop, do not follow it elsewhere
        try:
            node = mem.ptr(node)
        except UnreadableMemory:
            break
    return PoolBlock(pool, arena, szidx, size, block, BlockState.ALLOCATED, count, nextoffset,
                     f"allocated pymalloc block ({where})")


def pymalloc_lookup(target: Target, mem: Memory, runtime: Runtime, address: int) -> tuple[PoolBlock | None, bool | None]:
    """(the block holding ``address`` when it is in a pymalloc arena, in-arena answer)."""
    states, _why = obmalloc_states(target, mem, runtime)
    inside, base = in_arena(mem, runtime.layout, states, address)
    if not inside:
        return None, inside
    return pool_block(mem, runtime.layout, address, base), True


def allocator_facts(allocator: Allocator) -> dict[str, Any]:
    return {"name": allocator.name, "debug_hooks": allocator.debug_hooks, "label": allocator.label}
