"""pymalloc's arenas, pools and blocks per size class, counted from memory (Objects/obmalloc.c).

What ``sys._debugmallocstats()`` prints, but read from outside, so it works
on a core too. Each pymalloc instance (one, or one per interpreter from 3.12)
keeps ``struct arena_object arenas[maxarenas]``; an arena with ``address != 0``
is allocated. Its pools run from ``address`` rounded up to POOL_SIZE to
``pool_address`` (the first never-used pool); a pool with ``ref.count == 0``
is empty (on the arena's ``freepools`` list), otherwise it serves size class
``szidx`` with ``count`` blocks in use out of ``(POOL_SIZE - 48) / size``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import UnreadableMemory, Unsupported
from ..target import Memory, Target
from . import allocators as al
from .runtime import Runtime

ARENA_OBJECT = 48  # sizeof(struct arena_object), all versions
MAX_POOLS = 1 << 20  # pool headers read per command


@dataclass
class SizeClass:
    size: int
    pools: int = 0
    blocks_used: int = 0
    blocks_free: int = 0  # available blocks in the pools of this class ("avail blocks")

    def to_json(self) -> dict[str, int]:
        return {"size": self.size, "pools": self.pools, "blocks_used": self.blocks_used,
                "blocks_free": self.blocks_free, "bytes_used": self.size * self.blocks_used}


@dataclass
class HeapStats:
    allocator: al.Allocator
    pool_size: int
    arena_size: int
    states: int = 0
    arenas: int = 0
    arena_objects: int = 0  # maxarenas: arena_object slots
    pools_total: int = 0
    pools_used: int = 0
    pools_empty: int = 0  # carved out once, now on the arena's free list
    pools_untouched: int = 0  # never carved out of their arena
    classes: list[SizeClass] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        used = [c for c in self.classes if c.pools]
        return {
            "allocator": al.allocator_facts(self.allocator),
            "pool_size": self.pool_size, "arena_size": self.arena_size,
            "interpreter_states": self.states, "arenas": self.arenas, "arena_objects": self.arena_objects,
            "pools": {"total": self.pools_total, "used": self.pools_used, "empty": self.pools_empty,
                      "untouched": self.pools_untouched},
            "blocks_used": sum(c.blocks_used for c in used),
            "bytes_used": sum(c.size * c.blocks_used for c in used),
            "classes": [c.to_json() for c in used],
            "notes": list(self.notes),
        }


def heap_stats(target: Target, mem: Memory, runtime: Runtime) -> HeapStats:
    allocator = al.detect_allocator(target, mem, runtime)
    states, why = al.obmalloc_states(target, mem, runtime)
    if not states:
        raise Unsupported(f"cannot find pymalloc's state: {why}")
    L = runtime.layout
    stats = HeapStats(allocator, al.pool_size(L), al.arena_size(L), len(states),
                      classes=[SizeClass((i + 1) * al.ALIGNMENT) for i in range(al.NB_SMALL_SIZE_CLASSES)])
    if allocator.uses_pymalloc is False:
        stats.notes.append(f"the object allocator is {allocator.label}: pymalloc serves no objects")
    budget = [MAX_POOLS]
    for state in states:
        try:
            _count_state(mem, stats, state, budget)
        except UnreadableMemory as exc:
            stats.notes.append(f"pymalloc state unreadable: {exc}")
    if budget[0] <= 0:
        stats.notes.append(f"stopped after {MAX_POOLS} pools: counts are partial")
    return stats


def _carved_pools(mem: Memory, state: al.ObmallocState, psize: int,
                  notes: list[str]) -> Iterator[tuple[int, int, int, int]]:
    """First (maxarenas, -1, 0, 0), then (0, pools total, first pool, pools carved) for each
    allocated arena of a state."""
    arenas = mem.ptr(state.arenas_var)
    maxarenas = mem.u32(state.maxarenas_var)
    if maxarenas > al.MAX_ARENAS:
        notes.append(f"maxarenas {maxarenas} is implausible: read the first {al.MAX_ARENAS}")
        maxarenas = al.MAX_ARENAS
    yield maxarenas, -1, 0, 0
    for first in range(0, maxarenas, 4096):
        count = min(4096, maxarenas - first)
        raw = mem.read(arenas + ARENA_OBJECT * first, ARENA_OBJECT * count)
        for i in range(count):
            # struct arena_object {uintptr_t address; block *pool_address; uint nfreepools; uint ntotalpools; ...}
            address, pool_address, _nfreepools, ntotalpools = struct.unpack_from("<QQII", raw, i * ARENA_OBJECT)
            if not address:
                continue
            first_pool = -(-address // psize) * psize
            carved = (pool_address - first_pool) // psize if pool_address >= first_pool else 0
            yield 0, ntotalpools, first_pool, max(0, min(carved, ntotalpools))


def _count_state(mem: Memory, stats: HeapStats, state: al.ObmallocState, budget: list[int]) -> None:
    for maxarenas, ntotalpools, first_pool, carved in _carved_pools(mem, state, stats.pool_size, stats.notes):
        if ntotalpools < 0:
            stats.arena_objects += maxarenas
            continue
        stats.arenas += 1
        stats.pools_total += ntotalpools
        stats.pools_untouched += ntotalpools - carved
        _count_pools(mem, stats, first_pool, carved, budget)


def _count_pools(mem: Memory, stats: HeapStats, first_pool: int, carved: int, budget: list[int]) -> None:
    psize = stats.pool_size
    for index in range(carved):
        if budget[0] <= 0:
            return
        budget[0] -= 1
        pool = first_pool + index * psize
        try:
            header = mem.read(pool, al.POOL_OVERHEAD)
        except UnreadableMemory:
            stats.notes.append(f"pool {pool:#x} unreadable")
            continue
        count = struct.unpack_from("<I", header, 0)[0]
        szidx = struct.unpack_from("<I", header, 36)[0]
        if count == 0:
            stats.pools_empty += 1
            continue
        if szidx >= al.NB_SMALL_SIZE_CLASSES:
            stats.notes.append(f"pool {pool:#x} has a corrupt size class index {szidx}")
            continue
        size_class = stats.classes[szidx]
        capacity = (psize - al.POOL_OVERHEAD) // size_class.size
        stats.pools_used += 1
        size_class.pools += 1
        size_class.blocks_used += min(count, capacity)
        size_class.blocks_free += max(0, capacity - count)


def corrupt_free_lists(target: Target, mem: Memory, runtime: Runtime, limit: int = 4096) -> list[str]:
    """Pools whose free-list head is no block of the pool: a write through a
    stale pointer into a freed block, whose first word is the link (obmalloc.c
    pymalloc_free). Reads the first ``limit`` pool headers only."""
    states, _why = al.obmalloc_states(target, mem, runtime)
    psize = al.pool_size(runtime.layout)
    found: list[str] = []
    notes: list[str] = []
    budget = limit
    for state in states:
        try:
            for _maxarenas, total, first_pool, carved in _carved_pools(mem, state, psize, notes):
                if total < 0:
                    continue
                for index in range(min(carved, budget)):
                    pool = first_pool + index * psize
                    problem = _free_list_problem(mem, pool, psize)
                    if problem:
                        found.append(problem)
                budget -= carved
                if budget <= 0:
                    return found
        except UnreadableMemory:
            continue
    return found


def _free_list_problem(mem: Memory, pool: int, psize: int) -> str | None:
    try:
        header = mem.read(pool, al.POOL_OVERHEAD)
    except UnreadableMemory:
        return None
    count, freeblock = struct.unpack_from("<IxxxxQ", header, 0)
    szidx, nextoffset = struct.unpack_from("<II", header, 36)
    if count == 0 or not freeblock or szidx >= al.NB_SMALL_SIZE_CLASSES or nextoffset > psize:
        return None
    size = (szidx + 1) * al.ALIGNMENT
    offset = freeblock - pool
    if al.POOL_OVERHEAD <= offset < psize and (offset - al.POOL_OVERHEAD) % size == 0:
        return None
    # A count written through a stale pointer: the link was NULL (+1 -> 0x1) or a block (+1 -> odd).
    how = "an incref on a freed block" if freeblock == 1 or (freeblock & 0xF) == 1 else "a write to a freed block"
    return f"pool {pool:#x} free list corrupt: link {freeblock:#x}, {how} (size class {size})"
