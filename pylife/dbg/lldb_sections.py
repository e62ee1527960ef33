"""Which image section holds an address, and its bytes, from lldb's module list.

Both answer without the process: cores leave out read-only file-backed pages
(.rodata), and lldb-16 cannot resolve data addresses of images with a PT_TLS
segment (libpython3.12+) by itself.
"""

from __future__ import annotations

import lldb  # type: ignore[import-not-found]


def read_section(target: lldb.SBTarget, address: int, size: int) -> bytes | None:
    """Bytes of the image file section that holds [address, address + size), if one does."""
    resolved = target.ResolveLoadAddress(address)
    section = resolved.GetSection()
    if not section.IsValid() or resolved.GetOffset() + size > section.GetByteSize():
        return None
    error = lldb.SBError()
    try:
        data = section.GetSectionData(resolved.GetOffset(), size).ReadRawData(error, 0, size)
    except (OverflowError, TypeError, MemoryError, SystemError):
        return None
    return bytes(data) if error.Success() and data is not None and len(data) == size else None


class SectionTable:
    """LldbTarget.section_of, with every section's load range cached per (process, module count)."""

    def __init__(self, target: lldb.SBTarget) -> None:
        self.target = target
        self._cache: tuple[tuple[int, int], list[tuple[int, int, str, str]]] | None = None

    def section_of(self, address: int) -> tuple[str, str] | None:
        resolved = self.target.ResolveLoadAddress(address)
        section = resolved.GetSection()
        if section.IsValid() and section.GetName():
            module = resolved.GetModule()
            path = module.GetFileSpec().fullpath if module.IsValid() else ""
            return section.GetName(), path or ""
        # lldb-16 fails to resolve data addresses of images with a PT_TLS
        # segment (libpython3.12+): look the address up in the sections' load ranges.
        for start, end, name, path in self._table():
            if start <= address < end:
                return name, path
        return None

    def _table(self) -> list[tuple[int, int, str, str]]:
        process = self.target.GetProcess()
        key = (int(process.GetUniqueID()) if process.IsValid() else 0, int(self.target.GetNumModules()))
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        table: list[tuple[int, int, str, str]] = []
        for module in self.target.module_iter():
            path = module.GetFileSpec().fullpath or ""
            pending = [module.GetSectionAtIndex(i) for i in range(module.GetNumSections())]
            while pending and len(table) < 100_000:
                section = pending.pop()
                children = section.GetNumSubSections()
                if children:
                    pending.extend(section.GetSubSectionAtIndex(i) for i in range(children))
                    continue
                start = section.GetLoadAddress(self.target)
                size = section.GetByteSize()
                if start not in (lldb.LLDB_INVALID_ADDRESS, 0) and size:
                    table.append((int(start), int(start) + int(size), section.GetName() or "", path))
        self._cache = (key, table)
        return table
