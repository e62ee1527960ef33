"""pymalloc block state, read from pool headers (Objects/obmalloc.c; cpython-internals.md §5).

Only what the watch recorder needs today: is a small block on its pool's
free list (or never handed out), or allocated again? The arena/radix-tree
"is this address pymalloc at all" test is not done here: callers pass
blocks they know came from pymalloc (objects of at most 512 bytes).
"""

from __future__ import annotations

import enum
import struct

from ..errors import UnreadableMemory
from ..target import Memory
from .layout import Layout

SMALL_REQUEST_THRESHOLD = 512
POOL_OVERHEAD = 48  # sizeof(struct pool_header), all versions
ALIGNMENT = 16


class BlockState(enum.Enum):
    ALLOCATED = "allocated"
    FREE = "free"  # on the pool's free list
    NEVER_USED = "never used"  # beyond the pool's nextoffset
    UNKNOWN = "unknown"


def pool_size(layout: Layout) -> int:
    """POOL_SIZE: 4 KiB up to 3.9, 16 KiB from 3.10 (obmalloc.c POOL_BITS)."""
    return 4096 if layout.key <= (3, 9) else 16384


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
