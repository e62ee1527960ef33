"""What a write to a watched count is: an incref or decref, the decrement to zero, the
allocator taking the block back, the block reused by a new object, or a write after the free.

Decided from the watch's phase (record/watch.py), the writer's C frames, the
written value and, once the object is freed, the allocator's view of its block.
"""

from __future__ import annotations

from ..cpython.allocators import SMALL_REQUEST_THRESHOLD, BlockState, block_state
from ..cpython.debug_hooks import debug_header
from ..cpython.objects import Objects
from ..errors import PylifeError
from ..target import NativeFrame, Target
from . import events as ev
from .free_writes import allocator_write
from .watch import Watch
from .writers import ALLOCATOR_WRITERS, NEW_OBJECT_WRITERS


def classify(target: Target, watch: Watch, objects: Objects, old: int, new: int, writer: str | None,
             native: list[NativeFrame], written: int, seq: int) -> tuple[str, str | None]:
    """The kind of event. ``new`` is the refcount as the layout reads it (3.14+: the
    low 32 bits); ``written`` the whole word, which an allocator fills with a link;
    ``seq`` the number the event will get."""
    address = watch.history.address
    if watch.phase == "alive":
        if new < 0:
            return ev.NEGATIVE, f"refcount of {address:#x} went negative ({old} -> {new}) in {writer or 'unknown'}"
        if new == 0:
            return ev.ZERO, None
        return (ev.INCREF if new > old else ev.DECREF), None
    # The object was freed: who writes into its memory now?
    functions = {f.function for f in native[:8]}
    if writer in ALLOCATOR_WRITERS or functions & {"_PyMem_DebugRawFree", "pymalloc_free", "_PyObject_Free"}:
        return ev.ALLOCATOR, None
    # Without .symtab (or libc's symbols) nobody names the allocator: recognise its write by value.
    why = allocator_write(target, objects.mem, objects.layout, watch.block, watch.block_size,
                          watch.field_address, written)
    if why is not None:
        return ev.ALLOCATOR, why
    if watch.phase == "foreign":  # a followed block's new object keeps its data here: not a count
        return ev.WRITE, None
    # PYTHONMALLOC=debug: the allocation starts 16 bytes before the object's block
    # (Objects/obmalloc.c, _PyMem_DebugRawAlloc), so pymalloc's pool does not know
    # watch.block; the hooks' own header does: _PyMem_DebugRawFree fills it with
    # 0xDD, _PyMem_DebugRawAlloc writes a valid one for the block's next object
    # (seen: a tuple iterator's it_index = 0 on a freed object's count).
    header = debug_header(objects.mem, watch.block)
    state = BlockState.ALLOCATED if header is not None and header.valid else BlockState.UNKNOWN
    if state is BlockState.UNKNOWN and watch.block_size <= SMALL_REQUEST_THRESHOLD:
        state, _size = block_state(objects.mem, objects.layout, watch.block)
    # A block pymalloc does not track (malloc's) is reused when, after the
    # allocator took it back, a new object's refcount 1 is written over a
    # valid type (_PyObject_Init sets ob_type first; glibc's free overwrote it).
    returned = any(e.kind == ev.ALLOCATOR for e in watch.history.events)
    reused = state is BlockState.ALLOCATED or (state is BlockState.UNKNOWN and new == 1 and (
        bool(functions & NEW_OBJECT_WRITERS) or (returned and has_type(objects, watch.history.address))))
    if reused:
        return ev.REUSE, (f"memory reused by a new {new_occupant(objects, watch)} at event {seq} "
                          f"(written by {writer or 'unknown'})")
    if new == old - 1:
        return ev.DECREF_AFTER_FREE, (f"decref of freed object {address:#x} ({watch.history.type}) in {writer or 'unknown'}: "
                                      f"it was freed at event {watch.history.freed_at}")
    return ev.USE_AFTER_FREE, (f"use after free: {writer or 'an unknown writer'} wrote the refcount of freed object {address:#x} "
                               f"({watch.history.type}, freed at event {watch.history.freed_at}): {old:#x} -> {new:#x}")

def has_type(objects: Objects, address: int) -> bool:
    try:
        objects.type_of(address)
    except PylifeError:
        return False
    return True

def new_occupant(objects: Objects, watch: Watch) -> str:
    """Name the object now living in the block: it may start at any pre-header offset."""
    for offset in (0, 16, 32):
        try:
            return f"{objects.type_of(watch.block + offset).qualified} object"
        except PylifeError:
            continue
    return "object"
