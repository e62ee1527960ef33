"""The ``PYTHONMALLOC=debug`` hooks' marks, read from outside (Objects/obmalloc.c; cpython-internals.md §6).

``_PyMem_DebugRawAlloc`` puts a header in front of every block it hands out
(the requested size, the API byte, pad bytes) and a trailer after it;
``_PyMem_DebugRawFree`` fills a freed block with 0xDD. Which allocator runs
under the hooks, and the pools they sit on, are allocators.py's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ..errors import UnreadableMemory
from ..target import Memory
from .glibc_malloc import MAX_CHUNK

# Objects/obmalloc.c, PYTHONMALLOC=debug (_PyMem_DebugRawAlloc): 2*SST header
# {size_t size (big-endian); char api_id; 7 x FORBIDDENBYTE}, data, SST trailer.
DEBUG_HEADER = 16
DEBUG_TRAILER = 8
FORBIDDENBYTE = 0xFD
DEADBYTE = 0xDD
CLEANBYTE = 0xCD
DEBUG_APIS = {"r": "raw (PyMem_Raw*)", "m": "mem (PyMem_*)", "o": "object (PyObject_*)"}


@dataclass(frozen=True)
class DebugHeader:
    base: int  # p: what the underlying allocator returned
    requested: int  # requested size, stored big-endian
    api: str  # the API byte as text ('o', 'm', 'r', or e.g. '\\xdd')
    pads_ok: bool  # bytes 9-15 are FORBIDDENBYTE
    trailer_ok: bool | None  # the 8 bytes after the data; None when not checked
    dead: bool  # the header is 0xDD fill: freed by the hooks

    @property
    def valid(self) -> bool:
        return self.api in DEBUG_APIS and self.pads_ok

    def facts(self) -> dict[str, Any]:
        return {"debug_header": self.base, "debug_api": self.api, "debug_pads_ok": self.pads_ok,
                "debug_requested_size": self.requested if self.valid else None, "debug_trailer_ok": self.trailer_ok}


def debug_header(mem: Memory, data: int) -> DebugHeader | None:
    """The hooks' header in front of ``data`` (the pointer they returned)."""
    try:
        raw = mem.read(data - DEBUG_HEADER, DEBUG_HEADER)
    except UnreadableMemory:
        return None
    requested = struct.unpack(">Q", raw[:8])[0]
    api = chr(raw[8]) if 0x20 <= raw[8] < 0x7F else f"\\x{raw[8]:02x}"
    pads_ok = all(b == FORBIDDENBYTE for b in raw[9:16])
    dead = all(b == DEADBYTE for b in raw[8:16])
    trailer_ok: bool | None = None
    if api in DEBUG_APIS and pads_ok and requested < MAX_CHUNK:
        try:
            trailer_ok = all(b == FORBIDDENBYTE for b in mem.read(data + requested, DEBUG_TRAILER))
        except UnreadableMemory:
            trailer_ok = None
    return DebugHeader(data - DEBUG_HEADER, requested, api, pads_ok, trailer_ok, dead)


def dead_fill(mem: Memory, address: int, size: int = 16, byte: int = DEADBYTE) -> bool:
    """``size`` bytes of 0xDD at ``address``: what _PyMem_DebugRawFree leaves (or another fill byte)."""
    try:
        return mem.read(address, size) == bytes([byte]) * size
    except UnreadableMemory:
        return False
