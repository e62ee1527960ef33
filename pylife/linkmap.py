"""Load bases of the loaded images, read from the dynamic linker's own list.

glibc elf/link.h: ``struct r_debug {int r_version; struct link_map *r_map; ...}``
(``_r_debug`` is exported by ld.so) and ``struct link_map {ElfW(Addr) l_addr;
char *l_name; ElfW(Dyn) *l_ld; struct link_map *l_next, *l_prev; ...}``.
``l_addr`` is the difference between the image's file addresses and where it
was loaded: the same base lldb derives from an image's header. The
executable's entry has an empty name. Works live and on cores (ld.so's data
is in the core).
"""

from __future__ import annotations

from .errors import PylifeError, UnreadableMemory
from .target import Memory, Target

MAX_IMAGES = 1024
EXECUTABLE = ""  # l_name of the main program's entry


def load_bases(target: Target, mem: Memory) -> dict[str, int]:
    """l_name -> l_addr of every image on the link map ("" for the executable); {} when not found."""
    try:
        r_debug = target.symbol_address("_r_debug")
    except PylifeError:
        r_debug = None
    if r_debug is None:
        return {}
    bases: dict[str, int] = {}
    seen: set[int] = set()
    try:
        node = mem.ptr(r_debug + 8)  # r_map: the int r_version is padded to 8
        while node and node not in seen and len(seen) < MAX_IMAGES:
            seen.add(node)
            l_addr, l_name = mem.u64(node), mem.ptr(node + 8)
            try:
                name = mem.cstring(l_name, 4096).decode("utf-8", "replace") if l_name else EXECUTABLE
            except UnreadableMemory:
                name = None
            if name is not None:
                bases.setdefault(name, l_addr)
            node = mem.ptr(node + 24)  # l_next
    except UnreadableMemory:
        pass
    return bases
