"""glibc malloc chunks, for objects pymalloc did not serve (blocks over 512 bytes, PYTHONMALLOC=malloc).

glibc malloc/malloc.c: a chunk header {prev_size; size | flags} precedes the
user data; a chunk is in use when the next chunk's PREV_INUSE bit is set; a
free into the tcache writes {next (safe-linked since 2.32), key} over the
first 16 user bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ..errors import PylifeError, UnreadableMemory
from ..target import Memory, Target

ALIGNMENT = 16

# glibc malloc/malloc.c: chunk header {prev_size; size | flags}, user data at +16.
PREV_INUSE = 1
IS_MMAPPED = 2
NON_MAIN_ARENA = 4
MIN_CHUNK = 32
MAX_CHUNK = 1 << 40


@dataclass(frozen=True)
class Chunk:
    address: int  # the chunk header (user pointer - 16)
    size: int
    mmapped: bool
    in_use: bool | None  # None when the next chunk is unreadable
    tcache: bool  # the first 16 user bytes look like a tcache entry {next, key}
    why: str

    def facts(self) -> dict[str, Any]:
        return {"chunk": self.address, "chunk_size": self.size, "chunk_in_use": self.in_use,
                "chunk_mmapped": self.mmapped, "chunk_tcache": self.tcache}


def _tcache_like(mem: Memory, user: int, size: int, key: int | None) -> bool:
    """glibc tcache_entry {next (PROTECT_PTR since 2.32); key}: tcache_put() in malloc.c."""
    try:
        first, second = struct.unpack("<QQ", mem.read(user, 16))
    except UnreadableMemory:
        return False
    if key is not None and second == key:
        return True
    # Safe-linking (glibc 2.32+): next = PROTECT_PTR(&e->next, next) = (pos >> 12) ^ next.
    # (Plain pre-2.32 links are not recognised: a live GC head's _gc_next
    # would look just like one.)
    nxt = (user >> 12) ^ first
    if nxt == 0:
        return True  # the bin's last entry: PROTECT_PTR(pos, NULL)
    if nxt % ALIGNMENT or not 4096 <= nxt < 1 << 47 or nxt == user:
        return False
    try:
        return bool(mem.u64(nxt - 8) & ~7 == size)  # the next entry is a chunk of the same bin
    except UnreadableMemory:
        return False


_tcache_keys: dict[int, tuple[Target, int | None]] = {}


def _tcache_key(target: Target, mem: Memory) -> int | None:
    """glibc >= 2.34's random ``tcache_key`` (a libc static: needs libc's symbols)."""
    cached = _tcache_keys.get(id(target))
    if cached is None or cached[0] is not target:
        try:
            key_address = target.symbol_address("tcache_key")
        except PylifeError:
            key_address = None
        cached = (target, key_address)
        _tcache_keys.clear()
        _tcache_keys[id(target)] = cached
    if cached[1] is None:
        return None
    try:
        return mem.u64(cached[1])
    except UnreadableMemory:
        return None


def glibc_chunk(target: Target, mem: Memory, user: int) -> Chunk | None:
    """The malloc chunk whose user data starts at ``user``; None when no sane header is there."""
    if user % ALIGNMENT:
        return None
    try:
        prev_size, size_field = struct.unpack("<QQ", mem.read(user - 16, 16))
    except UnreadableMemory:
        return None
    size = size_field & ~7
    if size < MIN_CHUNK or size % ALIGNMENT or size > MAX_CHUNK:
        return None
    if size_field & IS_MMAPPED:
        # mmap'd chunks are page-aligned with prev_size as the leading slack (malloc.c sysmalloc_mmap).
        if (user - 16 - prev_size) % 4096 or (size + prev_size) % 4096:
            return None
        return Chunk(user - 16, size, True, True, False, f"mmap'd glibc chunk of {size} bytes (freed ones are unmapped)")
    try:
        next_prev_size, next_size = struct.unpack("<QQ", mem.read(user - 16 + size, 16))
    except UnreadableMemory:
        return Chunk(user - 16, size, False, None, False, f"glibc chunk of {size} bytes (next chunk unreadable)")
    if next_size & ~7 and (next_size & ~7) < MIN_CHUNK:
        return None  # the "next chunk" has a nonsense size: this was no chunk header
    if not next_size & PREV_INUSE:
        if next_prev_size != size:
            return None  # a free chunk's footer (the next prev_size) repeats its size: set_foot()
        return Chunk(user - 16, size, False, False, False,
                     f"glibc chunk of {size} bytes is free (the next chunk's PREV_INUSE bit is clear)")
    tcache = _tcache_like(mem, user, size, _tcache_key(target, mem))
    return Chunk(user - 16, size, False, True, tcache, f"glibc chunk of {size} bytes, in use by malloc")
