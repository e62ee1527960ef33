"""Which allocator serves the object domain, told without symbols (3.12+).

``_PyRuntime.allocators`` (pycore_pymem.h) holds ``standard`` =
``{PyMemAllocatorEx raw, mem, obj}`` (40 bytes each: ctx, malloc, calloc,
realloc, free) and ``debug`` = ``{debug_alloc_api_t raw, mem, obj}`` (48
bytes each: ``char api_id`` padded to 8, then the wrapped allocator).
A wrapper's ``ctx`` points at what it wraps: the debug hooks set
``ctx = &_PyRuntime.allocators.debug.<domain>`` (obmalloc.c
``set_up_debug_hooks_domain_unlocked``) and tracemalloc
``ctx = &allocators.<domain>`` (its saved PyMemAllocatorEx). The plain
allocators have ``ctx == NULL``. Unwrapped, the three domains' malloc
functions tell the allocator apart by which of them are equal
(obmalloc.c ``_PyMem_SetupAllocators``):

- pymalloc: mem and obj share ``_PyObject_Malloc``, raw differs;
- malloc: raw, mem and obj are all ``_PyMem_RawMalloc``;
- mimalloc: three different functions.
"""

from __future__ import annotations

from ..errors import UnreadableMemory
from ..target import Memory

STANDARD_ENTRY = 40
DEBUG_ENTRY = 48
MAX_WRAPPERS = 4


def _unwrap(mem: Memory, entry: int, debug: int) -> tuple[int, bool]:
    """(the innermost malloc of the domain whose allocator is at ``entry``, debug hooks seen)."""
    hooks = False
    for _ in range(MAX_WRAPPERS):
        ctx = mem.ptr(entry)
        if ctx == 0:
            break
        if ctx == debug:
            hooks = True
            entry = debug + 8  # debug_alloc_api_t.alloc
            debug = -1  # the hooks wrap once
        else:
            entry = ctx
    return mem.ptr(entry + 8), hooks


def allocator_by_shape(mem: Memory, standard_obj: int, debug_obj: int) -> tuple[str, bool] | None:
    """(pymalloc | malloc | mimalloc, debug hooks) from ``_PyRuntime.allocators``; None if unreadable or odd."""
    try:
        raw, _ = _unwrap(mem, standard_obj - 2 * STANDARD_ENTRY, debug_obj - 2 * DEBUG_ENTRY)
        mem_malloc, _ = _unwrap(mem, standard_obj - STANDARD_ENTRY, debug_obj - DEBUG_ENTRY)
        obj, hooks = _unwrap(mem, standard_obj, debug_obj)
    except UnreadableMemory:
        return None
    if 0 in (raw, mem_malloc, obj):
        return None  # not set up (yet): no allocator at all
    if raw == mem_malloc == obj:
        return "malloc", hooks
    if mem_malloc == obj != raw:
        return "pymalloc", hooks
    if len({raw, mem_malloc, obj}) == 3:
        return "mimalloc", hooks
    return None
