"""Cyclic GC state: is an object tracked, and in which generation (pycore_gc.h).

The generation is found by following the object's own ``_gc_next`` links
until one of the generation list heads is reached: cheap for young objects,
bounded for old ones, and it needs no walk of the whole heap.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UnreadableMemory
from ..target import Memory
from .objects import Objects
from .runtime import Runtime, interpreters

PERMANENT_GENERATION = 3  # gc.freeze() moves objects to the permanent generation
MAX_GC_STEPS = 2_000_000
_POINTER_MASK = ~3  # both _gc_next and _gc_prev carry flag bits in the low 2 bits


@dataclass(frozen=True)
class GcInfo:
    tracked: bool
    generation: int | None  # 0-2, PERMANENT_GENERATION, or None (untracked/unknown)
    collecting: bool = False
    note: str | None = None


def gc_state_addresses(mem: Memory, runtime: Runtime) -> list[int]:
    """Address of every ``struct _gc_runtime_state`` (one per interpreter in 3.9+)."""
    L = runtime.layout
    if L.gc_state_in_runtime():
        return [runtime.address + L["_PyRuntimeState.gc"]]
    return [interp + L["PyInterpreterState.gc"] for interp in interpreters(mem, runtime)]


def generation_heads(runtime: Runtime, gc_state: int) -> dict[int, int]:
    """List head address -> generation number for one GC state."""
    L = runtime.layout
    generations = gc_state + L["_gc_runtime_state.generations"]
    heads = {generations + i * L["gc_generation.size"] + L["gc_generation.head"]: i for i in range(3)}
    heads[gc_state + L["_gc_runtime_state.permanent_generation"] + L["gc_generation.head"]] = PERMANENT_GENERATION
    return heads


def gc_info(mem: Memory, runtime: Runtime, address: int, is_gc: bool) -> GcInfo:
    if not is_gc:
        return GcInfo(False, None, note="type does not use the cyclic GC")
    L = runtime.layout
    if L.free_threaded:
        # pycore_gc.h (Py_GIL_DISABLED): ob_gc_bits says tracked; no generation lists exist.
        tracked = Objects(mem, L).ft_header(address).tracked
        return GcInfo(tracked, None, note="free-threaded build: the GC walks mimalloc heaps, no generations")
    head_size = L["PyGC_Head.size"]
    gc_head = address - head_size
    gc_next = mem.ptr(gc_head) & _POINTER_MASK
    if gc_next == 0:
        return GcInfo(False, None)
    heads: dict[int, int] = {}
    collecting = False
    for state in gc_state_addresses(mem, runtime):
        heads.update(generation_heads(runtime, state))
        try:
            collecting = collecting or mem.i32(state + L["_gc_runtime_state.collecting"]) != 0
        except UnreadableMemory:
            pass
    node = gc_next
    # Brent's cycle detection: a corrupt list may loop without passing the
    # object or a head; the tortoise jumps to the walker at powers of two.
    tortoise, power, steps = gc_head, 1, 1
    for _ in range(MAX_GC_STEPS):
        generation = heads.get(node)
        if generation is not None:
            return GcInfo(True, generation, collecting)
        if node == gc_head:
            return GcInfo(True, None, collecting, "GC list loops back to the object without reaching a generation head")
        if node == tortoise:
            return GcInfo(True, None, collecting, f"GC list loops at {node:#x} without reaching a generation head")
        if steps == power:
            tortoise, power, steps = node, power * 2, 0
        steps += 1
        try:
            node = mem.ptr(node) & _POINTER_MASK
        except UnreadableMemory as exc:
            return GcInfo(True, None, collecting, f"GC list broken: {exc}")
        if node == 0:
            return GcInfo(True, None, collecting, "GC list broken: NULL _gc_next")
    return GcInfo(True, None, collecting, f"generation not found within {MAX_GC_STEPS} GC list steps")
