"""A pymalloc pool recognised by its header alone, when the arena table cannot be read.

Up to 3.11 pymalloc's ``arenas``/``maxarenas``/``arena_map_root`` are file
statics (Objects/obmalloc.c), named only by a ``.symtab``; a strip-all
interpreter has none. Every pool header is still written by
``pymalloc_alloc`` → ``init_pool`` (obmalloc.c, 3.8-3.13) with fixed
relations a random page start does not satisfy:

- ``szidx`` < 32 (``NB_SMALL_SIZE_CLASSES``), ``size = (szidx + 1) * 16``;
- ``maxnextoffset == POOL_SIZE - size``;
- ``nextoffset == POOL_OVERHEAD + k * size`` and ``<= maxnextoffset + size``;
- ``ref.count`` <= the blocks handed out so far;
- ``freeblock`` is NULL or a block start inside the pool;
- ``arenaindex`` < ``maxarenas`` (bounded here).

A pool whose header passes every check is evidence; an address whose page
fails them is not in a pool (every pymalloc block lies in one).
"""

from __future__ import annotations

import struct

from ..errors import UnreadableMemory
from ..target import Memory
from . import allocators as al
from .layout import Layout

SHAPE_NOTE = "pool recognised by its header's shape (pymalloc's arena table is a static: no .symtab)"


def pool_header_ok(mem: Memory, layout: Layout, pool: int) -> bool | None:
    """Is there a well-formed pool header at ``pool``? None when it cannot be read."""
    size_of_pool = al.pool_size(layout)
    try:
        header = mem.read(pool, al.POOL_OVERHEAD)
    except UnreadableMemory:
        return None
    count, freeblock = struct.unpack_from("<IxxxxQ", header, 0)
    arenaindex, szidx, nextoffset, maxnextoffset = struct.unpack_from("<IIII", header, 32)
    if szidx >= al.NB_SMALL_SIZE_CLASSES or arenaindex >= al.MAX_ARENAS:
        return False
    size = (szidx + 1) * al.ALIGNMENT
    if maxnextoffset != size_of_pool - size or nextoffset > maxnextoffset + size:
        return False
    if nextoffset < al.POOL_OVERHEAD + size or (nextoffset - al.POOL_OVERHEAD) % size:
        return False
    if count > (nextoffset - al.POOL_OVERHEAD) // size:
        return False
    if freeblock:
        offset = freeblock - pool
        if not al.POOL_OVERHEAD <= offset < size_of_pool or (offset - al.POOL_OVERHEAD) % size:
            return False
    return True


def pool_block_by_shape(mem: Memory, layout: Layout, address: int) -> tuple[al.PoolBlock | None, bool | None]:
    """(the block holding ``address`` in a pool recognised by shape, is it in a pool?)."""
    pool = address & ~(al.pool_size(layout) - 1)
    ok = pool_header_ok(mem, layout, pool)
    if not ok:
        # An unreadable page start is no pool either: pools are whole mapped pages of an arena.
        return None, False
    block = al.pool_block(mem, layout, address)
    if block is None:
        return None, True
    return block, True
