"""Allocation tracebacks read out of the target's tracemalloc tables (cpython-internals.md §11).

Nothing runs in the target: the traces hash table maps the pointer an
allocator returned (the object minus its pre-header) to ``trace_t {size;
traceback_t *traceback}``; the traceback holds ``frame_t {filename; lineno}``
entries, most recent first.

- 3.8-3.11: statics of Modules/_tracemalloc.c: ``_Py_tracemalloc_config``
  (exported) and ``tracemalloc_traces`` (.symtab only).
- 3.12+: ``_PyRuntime.tracemalloc`` (Include/internal/pycore_tracemalloc.h).
- ``_Py_hashtable_t``: 3.9+ entries {next, key_hash, key, value}
  (Include/internal/pycore_hashtable.h); 3.8 stores the key and the data
  inline after {next, key_hash} (Modules/hashtable.h).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..errors import PylifeError, UnreadableMemory, Unsupported
from ..symbols import static_symbol
from ..target import Memory, Target
from .objects import Objects
from .runtime import Runtime

MASK64 = (1 << 64) - 1
MAX_CHAIN = 10_000  # entries followed in one bucket
MAX_FRAMES = 1000  # tracemalloc's own limit is 65535 (3.9+ uint16)


@dataclass(frozen=True)
class TraceState:
    tracing: bool
    max_nframe: int | None
    traces: int  # _Py_hashtable_t* of the default domain


@dataclass
class Trace:
    key: int
    size: int
    frames: list[tuple[str, int]] = field(default_factory=list)  # (filename, lineno), most recent first
    total_nframe: int | None = None


def hash_pointer(address: int) -> int:
    """Python/pyhash.c _Py_HashPointerRaw: rotate right by 4 bits."""
    return ((address >> 4) | (address << 60)) & MASK64


def state(target: Target, mem: Memory, runtime: Runtime) -> TraceState:
    L = runtime.layout
    if L.has("_PyRuntimeState.tracemalloc"):
        base = runtime.address + L["_PyRuntimeState.tracemalloc"]
        tracing = mem.i32(base + L["_tracemalloc_runtime_state.tracing"])
        max_nframe = mem.i32(base + L["_tracemalloc_runtime_state.max_nframe"])
        traces = mem.ptr(base + L["_tracemalloc_runtime_state.traces"])
        return TraceState(bool(tracing), max_nframe, traces)
    config = target.symbol_address("_Py_tracemalloc_config")
    if config is None:
        raise Unsupported("tracemalloc's state not found (no _Py_tracemalloc_config symbol)")
    tracing = mem.i32(config + L["_PyTraceMalloc_Config.tracing"])
    max_nframe = mem.i32(config + L["_PyTraceMalloc_Config.max_nframe"])
    if not tracing:
        return TraceState(False, max_nframe, 0)
    table = static_symbol(target, "tracemalloc_traces")
    if table is None:
        raise Unsupported("tracemalloc is tracing, but its tracemalloc_traces table has no symbol (stripped libpython?)")
    return TraceState(True, max_nframe, mem.ptr(table))


def _find_entry(mem: Memory, runtime: Runtime, table: int, key: int) -> tuple[int, int] | None:
    """(trace size, traceback pointer) stored for ``key``, or None."""
    L = runtime.layout
    nbuckets = mem.u64(table + L["_Py_hashtable_t.nbuckets"])
    buckets = mem.ptr(table + L["_Py_hashtable_t.buckets"])
    if not nbuckets or nbuckets & (nbuckets - 1) or nbuckets > 1 << 40:
        raise Unsupported(f"tracemalloc's traces table has an implausible bucket count {nbuckets}")
    key_hash = hash_pointer(key)
    legacy = L.has("_Py_hashtable_t.key_size")  # 3.8: key and data inline
    if legacy and key_hash == MASK64:
        key_hash = MASK64 - 1  # _Py_HashPointer never returns -1
    entry = mem.ptr(buckets + 8 * (key_hash & (nbuckets - 1)))
    seen = 0
    while entry and seen < MAX_CHAIN:
        seen += 1
        if legacy:
            key_size = mem.u64(table + L["_Py_hashtable_t.key_size"])
            data = entry + L["_Py_hashtable_entry_t.size"]
            if mem.u64(data) == key:
                size, traceback = struct.unpack("<QQ", mem.read(data + key_size, 16))
                return size, traceback
        elif mem.u64(entry + L["_Py_hashtable_entry_t.key"]) == key:
            trace = mem.ptr(entry + L["_Py_hashtable_entry_t.value"])
            size, traceback = struct.unpack("<QQ", mem.read(trace, 16))
            return size, traceback
        entry = mem.ptr(entry)  # _Py_slist_item_t.next
    return None


def _frames(mem: Memory, objects: Objects, runtime: Runtime, traceback: int) -> tuple[list[tuple[str, int]], int | None]:
    L = runtime.layout
    if L["traceback_t.nframe_size"] == 2:
        nframe = mem.u16(traceback + L["traceback_t.nframe"])
    else:
        nframe = mem.i32(traceback + L["traceback_t.nframe"])
    total = mem.u16(traceback + L["traceback_t.total_nframe"]) if L.has("traceback_t.total_nframe") else None
    nframe = max(0, min(nframe, MAX_FRAMES))
    size = L["frame_t.size"]
    raw = mem.read(traceback + L["traceback_t.frames"], size * nframe) if nframe else b""
    frames: list[tuple[str, int]] = []
    for i in range(nframe):
        filename_ptr = struct.unpack_from("<Q", raw, i * size)[0]
        lineno = struct.unpack_from("<I", raw, i * size + L["frame_t.lineno"])[0]
        try:
            if L.tracemalloc_filename_is_cstring():
                filename = mem.cstring(filename_ptr, 4096).decode("utf-8", "replace") if filename_ptr else "<unknown>"
            else:
                filename = objects.str_value(filename_ptr, 4096)[0] if objects.is_kind(filename_ptr, "str") else "<unknown>"
        except PylifeError:
            filename = "<unreadable>"
        frames.append((filename, lineno))
    return frames, total


def find_trace(mem: Memory, objects: Objects, runtime: Runtime, traces: TraceState, keys: list[int]) -> Trace | None:
    """The first of ``keys`` (candidate allocation pointers) that has a trace."""
    for key in keys:
        try:
            found = _find_entry(mem, runtime, traces.traces, key)
        except UnreadableMemory:
            continue
        if found is not None:
            size, traceback = found
            frames, total = _frames(mem, objects, runtime, traceback)
            return Trace(key, size, frames, total)
    return None
