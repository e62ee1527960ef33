"""Symbolized native frames, cached, with one spelling in both debuggers.

Both adapters unwind through FrameSymbols: names and lines at a pc, GCC clone
suffixes as gdb spells them, and ``<module>+0x<offset>`` for a pc no symbol
names (gdb says ``??``, lldb-16 ``___lldb_unnamed_symbolN``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Optional

# (function, file, line, module path) of one native frame.
Symbol = tuple[Optional[str], Optional[str], Optional[int], Optional[str]]


_CLONE_NUMBER = re.compile(r"(\.(?:constprop|isra|part|cold|lto_priv))\.\d+$")
UNNAMED_PREFIXES = ("___lldb_unnamed_symbol",)  # lldb-16's name for a function no symbol table names


def is_unnamed(function: str | None) -> bool:
    """No symbol names this pc: gdb says None (or ``??``), lldb ``___lldb_unnamed_symbolN``."""
    return not function or function == "??" or function.startswith(UNNAMED_PREFIXES)


def unnamed_frame(module: str | None, pc: int, base: int) -> str:
    """The one spelling of an unnamed pc in both debuggers:
    ``<module basename>+0x<offset from the module's load base>`` (the bare pc without a module)."""
    if not module:
        return f"{pc:#x}"
    return f"{os.path.basename(module)}+{(pc - base) & ((1 << 64) - 1):#x}"


class FrameSymbols:
    """Symbolized native frames, cached per (pc, inline level), for both adapters.

    Names and lines at a pc never change while the libraries stay where they
    are (adapters ``clear()`` when they move). Inlined frames share their
    caller's pc, so the level (how many frames before this one had the same pc
    in the current unwind) is part of the key. Bounded: watch hits call this
    thousands of times a second.

    A pc that no symbol names gets the same name in both debuggers
    (``unnamed_frame``): ``module_bases`` gives each loaded image's load base,
    asked once per ``clear()``.
    """

    MAX_ENTRIES = 65536

    def __init__(self, module_bases: Callable[[], dict[str, int]] | None = None) -> None:
        self._cache: dict[tuple[int, int], Symbol] = {}
        self._module_bases = module_bases
        self._bases: dict[str, int] | None = None

    def clear(self) -> None:
        self._cache.clear()
        self._bases = None

    def _named(self, pc: int, symbol: Symbol) -> Symbol:
        function, file, line, module = symbol
        if not is_unnamed(function):
            assert function is not None
            # GCC clones from .symtab: lldb says `f.constprop.0`, gdb `f.constprop`.
            return _CLONE_NUMBER.sub(r"\1", function), file, line, module
        if self._bases is None:
            bases = self._module_bases() if self._module_bases is not None else {}
            # A frame's module may be spelt differently from the image list (a symlink): basenames too.
            self._bases = {**{os.path.basename(p): b for p, b in bases.items()}, **bases}
        path = module or ""
        base = self._bases.get(path, self._bases.get(os.path.basename(path), 0))
        return unnamed_frame(module, pc, base), file, line, module

    def unwind(self) -> Callable[[int, Callable[[], Symbol]], Symbol]:
        """A lookup for one unwind, innermost frame first: ``lookup(pc, compute)``."""
        previous_pc, level = -1, 0

        def lookup(pc: int, compute: Callable[[], Symbol]) -> Symbol:
            nonlocal previous_pc, level
            level = level + 1 if pc == previous_pc else 0
            previous_pc = pc
            symbol = self._cache.get((pc, level))
            if symbol is None:
                if len(self._cache) >= self.MAX_ENTRIES:
                    self._cache.clear()
                symbol = self._cache[(pc, level)] = self._named(pc, compute())
            return symbol

        return lookup
