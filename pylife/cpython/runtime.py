"""Find the CPython runtime in a target and tell which version it is.

Order (design.md §2): ``_Py_DebugOffsets`` at ``_PyRuntime`` (3.13+), then
``Py_Version`` (3.11+), then the libpython soname or executable name for the
minor version, with the micro version read from ``sys.version`` in memory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import PylifeError, UnreadableMemory, Unsupported
from ..target import Memory, Target, TargetKind
from . import debug_offsets, offsets_check
from .layout import Layout, PythonVersion, has_debug_table, table_for

_LIBPYTHON = re.compile(r"^libpython(\d+)\.(\d+)([a-z]*)\.so")
_EXECUTABLE = re.compile(r"^python(\d+)\.(\d+)([a-z]*)$")
MAX_INTERPRETERS = 64
MAX_THREADS = 4096


@dataclass
class Runtime:
    address: int  # &_PyRuntime
    libpython: str | None  # path, or None when linked into the executable
    executable: str | None
    layout: Layout

    @property
    def version(self) -> PythonVersion:
        return self.layout.version


def _find_images(target: Target) -> tuple[str | None, str | None, re.Match[str] | None]:
    modules = list(target.modules())
    executable = modules[0].path if modules else None
    for module in modules:
        match = _LIBPYTHON.match(os.path.basename(module.path))
        if match:
            return module.path, executable, match
    if executable:
        match = _EXECUTABLE.match(os.path.basename(executable))
        return None, executable, match
    return None, executable, None


def detect(target: Target, mem: Memory) -> Runtime:
    address = target.symbol_address("_PyRuntime")
    if address is None:
        if target.kind is TargetKind.CORE:
            raise Unsupported("no CPython runtime found (symbol _PyRuntime missing): "
                              "load the core together with its python executable")
        raise Unsupported("no CPython runtime found in this process (symbol _PyRuntime missing)")
    libpython, executable, name_match = _find_images(target)
    abiflags = name_match.group(3) if name_match else ""
    # The soname's ABI flags say "debug"; only without one is the (slow when
    # missing) symbol probe for Py_REF_DEBUG's _Py_RefTotal worth it.
    debug = "d" in abiflags if name_match else target.symbol_address("_Py_RefTotal") is not None
    named_minor = (int(name_match.group(1)), int(name_match.group(2))) if name_match else None
    free_threaded = "t" in abiflags

    version: PythonVersion | None = None
    offsets_override: dict[str, int] | None = None
    try:
        header = debug_offsets.parse_header(mem.read(address, debug_offsets.HEADER_SIZE))
    except UnreadableMemory:
        header = None
    if header is not None:
        version_hex, free_threaded = header
        version = PythonVersion.from_hex(version_hex, debug, free_threaded)
        try:
            blob = mem.read(address, debug_offsets.size_for(version_hex))
            offsets_override = debug_offsets.parse_offsets(blob, version_hex)
        except UnreadableMemory:
            offsets_override = None
    if version is None and (named_minor is None or named_minor >= (3, 11)):  # Py_Version is 3.11+
        py_version = target.symbol_address("Py_Version")
        if py_version is not None:
            try:
                version = PythonVersion.from_hex(mem.u32(py_version), debug, free_threaded)
            except UnreadableMemory:
                version = None
    if version is None and name_match:
        version = PythonVersion(int(name_match.group(1)), int(name_match.group(2)), None,
                                debug=debug, free_threaded=free_threaded)
    if version is None:
        raise Unsupported("found _PyRuntime but cannot tell the CPython version "
                          "(no Py_Version, no libpythonX.Y or pythonX.Y image)")

    table, source = table_for(version)
    warnings: list[str] = []
    if debug and not has_debug_table(version):
        warnings.append("debug build: offsets come from a release-build table and may differ")
    if offsets_override:
        # Target memory like any other: checked before it replaces the table.
        rejected = offsets_check.problem(offsets_override, table)
        if rejected is not None:
            warnings.append(f"_Py_DebugOffsets in the target look corrupt ({rejected}); using the {source}")
            offsets_override = None
    if offsets_override:
        mismatched = sorted(k for k, v in offsets_override.items() if k in table and table[k] != v)
        table.update(offsets_override)
        source = f"_Py_DebugOffsets in the target, completed by the {source}"
        if mismatched:
            warnings.append("_Py_DebugOffsets differ from the generated table for: " + ", ".join(mismatched))
    layout = Layout(version, table, source, warnings)
    return Runtime(address, libpython, executable, layout)


def interpreters(mem: Memory, runtime: Runtime) -> Iterator[int]:
    """Addresses of every PyInterpreterState, newest first (bounded, cycle-safe)."""
    L = runtime.layout
    seen: set[int] = set()
    interp = mem.ptr(runtime.address + L["_PyRuntimeState.interpreters_head"])
    while interp and interp not in seen and len(seen) < MAX_INTERPRETERS:
        seen.add(interp)
        yield interp
        try:
            interp = mem.ptr(interp + L["PyInterpreterState.next"])
        except UnreadableMemory:
            return


def main_interpreter(mem: Memory, runtime: Runtime) -> int:
    """The main interpreter is the oldest, i.e. the last on the list."""
    last = 0
    for interp in interpreters(mem, runtime):
        last = interp
    if not last:
        raise Unsupported("the CPython runtime has no interpreter (not initialized yet, or finalized)")
    return last


def read_micro_version(mem: Memory, runtime: Runtime) -> int | None:
    """Micro version from sys.version in the main interpreter's sysdict (3.8-3.10)."""
    from .objects import Objects  # local: objects depends on layout only

    objects = Objects(mem, runtime.layout)
    try:
        sysdict = mem.ptr(main_interpreter(mem, runtime) + runtime.layout["PyInterpreterState.sysdict"])
        pointer = objects.dict_get_str(sysdict, "version") if objects.is_kind(sysdict, "dict") else None
        if not pointer or not objects.is_kind(pointer, "str"):
            return None
        text = objects.str_value(pointer, 40)[0]
    except PylifeError:
        return None
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", text)
    if not match or (int(match.group(1)), int(match.group(2))) != runtime.version.minor_key:
        return None
    return int(match.group(3))
