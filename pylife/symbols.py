"""What the debugger knows about the target's symbols, asked the same way for both adapters.

- ``static_symbol``: a file-static of CPython (``arenas``, ``_PyObject``...),
  under its own name or the name link-time optimisation gives it when it
  privatises statics (GCC's ``name.lto_priv.N``: Debian's python3.11 has
  ``arenas.lto_priv.0``, and gdb cannot take ``&'arenas'`` there even with
  the debug files, whose DWARF marks the variable optimised out).
- ``symbol_inventory``: which symbol sources were found for CPython's image
  (DWARF, the static ``.symtab``, or only the exported ``.dynsym``), and
  what pylife does differently without each of them (``pylife version``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import PylifeError
from .target import Target

LTO_SUFFIXES = ("", ".lto_priv.0", ".lto_priv.1", ".lto_priv.2")
# Exported by libpython (or the executable) in 3.8-3.15: DWARF describes it when debug info is loaded.
EXPORTED_PROBE = "PyObject_Free"
# File-static functions of Objects/obmalloc.c in 3.8-3.15: only a .symtab names them.
STATIC_PROBES = ("_PyObject_Malloc", "_PyObject_Free", "pymalloc_alloc")


def _lookup(target: Target, name: str) -> int | None:
    try:
        return target.symbol_address(name)
    except PylifeError:
        return None


def static_symbol(target: Target, name: str) -> int | None:
    """Address of a C static, also under its LTO-privatised name; None when absent."""
    for suffix in LTO_SUFFIXES:
        address = _lookup(target, name + suffix)
        if address is not None:
            return address
    return None


@dataclass(frozen=True)
class SymbolInventory:
    dwarf: bool  # DWARF for CPython's functions (in the image or a separate debug file)
    symtab: bool  # a static symbol table (.symtab): names of file-static functions and data
    dynamic: bool  # exported symbols (.dynsym): _PyRuntime, Py_Version, PyObject_Free...

    @property
    def summary(self) -> str:
        if self.dwarf and self.symtab:
            return "DWARF and .symtab"
        if self.dwarf:
            return "DWARF (no .symtab)"
        if self.symtab:
            return ".symtab (no DWARF)"
        return "dynamic symbols only" if self.dynamic else "no symbols"

    def degraded(self) -> list[str]:
        """What works differently without the missing sources (one line each)."""
        lines: list[str] = []
        if not self.symtab:
            lines += [
                "C functions that only .symtab names print as module+offset (the same in gdb and lldb)",
                "allocator writes into a watched object are recognised by the value written "
                "(pool free-list head, glibc tcache/fastbin link), not by the writer's name",
                "the allocator (pymalloc, malloc, mimalloc, debug hooks) is told by which domains share a "
                "malloc (3.12+) or unknown (3.8-3.11); 3.8-3.11 pymalloc pools are recognised by their "
                "header's shape (the arena table is a static)",
                "3.8-3.11 alloc-site: tracemalloc's tables are statics (unavailable)",
            ]
        if not self.dwarf:
            lines += [
                "struct offsets come from generated tables or _Py_DebugOffsets, not checked against DWARF",
                "no C source lines, and no C argument names for diagnose (registers only)",
            ]
        return lines

    def to_json(self) -> dict[str, object]:
        return {"dwarf": self.dwarf, "symtab": self.symtab, "dynamic": self.dynamic,
                "summary": self.summary, "degraded": self.degraded()}


def symbol_inventory(target: Target) -> SymbolInventory:
    dynamic = _lookup(target, EXPORTED_PROBE) is not None
    symtab = any(static_symbol(target, name) is not None for name in STATIC_PROBES)
    try:
        dwarf = target.has_debug_info(EXPORTED_PROBE)
    except PylifeError:
        dwarf = False
    return SymbolInventory(dwarf, symtab, dynamic)
