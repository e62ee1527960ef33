"""Is this write into a freed object the allocator taking its block back? Judged by what is written.

Allocator functions are file statics (``pymalloc_free``, glibc's
``tcache_put``): without a ``.symtab`` or libc's debug symbols nobody names
the writer, so the write is recognised by its value instead:

- pymalloc (Objects/obmalloc.c ``pymalloc_free``): ``*(block **)p =
  lastfree = pool->freeblock; pool->freeblock = p``. The watchpoint fires
  after the first store and before the second: the value written is the
  pool's current free-list head (NULL for a pool that was full), or, once the
  pool is updated, the block is its head.
- ``PYTHONMALLOC=debug`` (``_PyMem_DebugRawFree``): 0xDD over the whole block.
- glibc tcache and fastbins (malloc/malloc.c ``tcache_put``, ``_int_free``):
  ``e->next = PROTECT_PTR(&e->next, head)`` over the first user word, which
  since glibc 2.32 is ``head ^ (&e->next >> 12)``: demangled it is NULL or
  another free chunk of the same size; ``e->key`` (``tcache_key``) at +8.
  Chunks that go to the unsorted/small/large bins get plain ``fd``/``bk``
  pointers (and ``fd_nextsize``/``bk_nextsize``), with the next chunk's
  PREV_INUSE bit cleared: the chunk header then says it is free.
"""

from __future__ import annotations

from ..cpython import allocators as al
from ..cpython import debug_hooks
from ..cpython.glibc_malloc import ALIGNMENT, MIN_CHUNK, PREV_INUSE, glibc_chunk
from ..cpython.layout import Layout
from ..cpython.pool_shape import pool_header_ok
from ..errors import UnreadableMemory
from ..target import Memory, Target

DEAD_WORD = int.from_bytes(bytes([debug_hooks.DEADBYTE]) * 8, "little")
USER_SPACE = 1 << 47


def pool_of(mem: Memory, layout: Layout, block: int) -> tuple[int, int] | None:
    """(pool, pool->freeblock) when ``block`` starts a block of a well-formed pool."""
    pool = block & ~(al.pool_size(layout) - 1)
    if not pool_header_ok(mem, layout, pool):
        return None
    try:
        freeblock = mem.u64(pool + 8)
        size = (mem.u32(pool + 36) + 1) * al.ALIGNMENT
    except UnreadableMemory:
        return None
    if block - pool < al.POOL_OVERHEAD or (block - pool - al.POOL_OVERHEAD) % size:
        return None
    return pool, freeblock


def pymalloc_free_write(mem: Memory, layout: Layout, block: int, field: int, new: int) -> str | None:
    """The write is pymalloc linking ``block`` into its pool's free list; None if not."""
    found = pool_of(mem, layout, block)
    if found is None or field != block:  # the link is the block's first word
        return None
    pool, freeblock = found
    # The watchpoint reports the link store before `pool->freeblock = p` runs.
    if new == freeblock and (new == 0 or pool_of(mem, layout, new) == found):
        return f"pymalloc free: the link to its pool's free-list head {new:#x} (pool {pool:#x})"
    return None


def debug_fill_write(new: int) -> str | None:
    if new & ((1 << 64) - 1) == DEAD_WORD:
        return "PYTHONMALLOC=debug free: 0xDD fill"
    return None


def _same_bin_chunk(mem: Memory, user: int, size: int) -> bool:
    """``user`` is the user pointer of a chunk of ``size`` bytes (the next entry of the same bin)."""
    if user % ALIGNMENT or not 4096 <= user < USER_SPACE:
        return False
    try:
        return mem.u64(user - 8) & ~7 == size
    except UnreadableMemory:
        return False


def glibc_free_write(target: Target, mem: Memory, user: int, field: int, new: int) -> str | None:
    """The write is glibc's free putting the chunk at ``user`` on a bin; None if not."""
    try:
        size = mem.u64(user - 8) & ~7
    except UnreadableMemory:
        return None
    if size < MIN_CHUNK or size % ALIGNMENT or size > 1 << 40:
        return None
    offset = field - user
    if offset == 0:
        # tcache / fastbin: safe-linked (glibc >= 2.32) or plain (older) next pointer.
        for link in (new ^ (field >> 12), new):
            if (link == 0 and new != 0) or (link not in (0, user) and _same_bin_chunk(mem, link, size)):
                return f"glibc free: tcache/fastbin link of a {size}-byte chunk (next {link:#x})"
    chunk = glibc_chunk(target, mem, user)
    if chunk is not None and chunk.in_use is False:
        return f"glibc free: the chunk is on a bin ({size} bytes, the next chunk's PREV_INUSE is clear)"
    if offset == 8 and chunk is not None and chunk.tcache:
        return "glibc free: the tcache entry's key"
    try:
        next_size = mem.u64(user - 8 + size)
    except UnreadableMemory:
        return None
    if offset in (0, 8, 16, 24) and not next_size & PREV_INUSE:
        return f"glibc free: bin links of a free {size}-byte chunk"
    return None


def allocator_write(target: Target, mem: Memory, layout: Layout, block: int, block_size: int, field: int,
                    new: int, header: int = 0) -> str | None:
    """Why the write of ``new`` at ``field`` (inside the freed allocation starting at
    ``block``) is the allocator's own, or None. ``header``: bytes of debug-hook header
    before ``block``."""
    why = debug_fill_write(new)
    if why is not None:
        return why
    start = block - header
    if block_size + header <= al.SMALL_REQUEST_THRESHOLD and pool_of(mem, layout, start) is not None:
        return pymalloc_free_write(mem, layout, start, field, new)
    return glibc_free_write(target, mem, start, field, new)
