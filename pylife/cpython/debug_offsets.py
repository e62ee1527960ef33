"""Parse ``_Py_DebugOffsets`` at the start of ``_PyRuntime`` (3.13+, Include/internal/pycore_debug_offsets.h).

The struct is a cookie, the version, a free-threaded flag and then groups of
uint64 entries, each group starting with the struct size. Each minor version
adds entries and groups (3.14: ``set_object``, ``gen_object``,
``interpreter_frame.stackpointer`` ...; 3.15: ``err_stackitem``,
``heap_type_object``, thread-state GIL fields ...), so where each entry sits
is data: ``layouts_generated.DEBUG_OFFSETS`` holds, per minor, the offset of
every entry inside the struct, generated from the interpreters' DWARF by
scripts/gen_layouts.py. ``FIELDS`` below says which entries pylife uses and
under which layout name; an entry that a version lacks is simply absent.
The struct has the same shape in free-threaded builds (only the values
differ), so their entries are read the same way.
"""

from __future__ import annotations

import struct

from .layouts_generated import DEBUG_OFFSETS

COOKIE = b"xdebugpy"
HEADER_SIZE = 24

# _Py_DebugOffsets entry ("group.field") -> pylife layout field.
FIELDS: dict[str, str] = {
    "runtime_state.interpreters_head": "_PyRuntimeState.interpreters_head",
    "interpreter_state.id": "PyInterpreterState.id",
    "interpreter_state.next": "PyInterpreterState.next",
    "interpreter_state.threads_head": "PyInterpreterState.threads_head",
    "interpreter_state.gc": "PyInterpreterState.gc",
    "interpreter_state.imports_modules": "PyInterpreterState.modules",
    "interpreter_state.sysdict": "PyInterpreterState.sysdict",
    "interpreter_state.ceval_gil": "PyInterpreterState.ceval_gil",
    "thread_state.next": "PyThreadState.next",
    "thread_state.interp": "PyThreadState.interp",
    "thread_state.current_frame": "PyThreadState.current_frame",
    "thread_state.thread_id": "PyThreadState.thread_id",
    "thread_state.native_thread_id": "PyThreadState.native_thread_id",
    "interpreter_frame.size": "_PyInterpreterFrame.size",
    "interpreter_frame.previous": "_PyInterpreterFrame.previous",
    "interpreter_frame.executable": "_PyInterpreterFrame.code",
    "interpreter_frame.instr_ptr": "_PyInterpreterFrame.instr",
    "interpreter_frame.localsplus": "_PyInterpreterFrame.localsplus",
    "interpreter_frame.owner": "_PyInterpreterFrame.owner",
    "interpreter_frame.stackpointer": "_PyInterpreterFrame.stackpointer",  # 3.14+
    "code_object.filename": "PyCodeObject.co_filename",
    "code_object.name": "PyCodeObject.co_name",
    "code_object.qualname": "PyCodeObject.co_qualname",
    "code_object.linetable": "PyCodeObject.co_linetable",
    "code_object.firstlineno": "PyCodeObject.co_firstlineno",
    "code_object.co_code_adaptive": "PyCodeObject.co_code_adaptive",
    "pyobject.size": "PyObject.size",
    "pyobject.ob_type": "PyObject.ob_type",
    "type_object.size": "PyTypeObject.size",
    "type_object.tp_name": "PyTypeObject.tp_name",
    "type_object.tp_flags": "PyTypeObject.tp_flags",
    "type_object.tp_basicsize": "PyTypeObject.tp_basicsize",  # 3.15+
    "tuple_object.ob_item": "PyTupleObject.ob_item",
    "tuple_object.ob_size": "PyVarObject.ob_size",
    "list_object.ob_item": "PyListObject.ob_item",
    "set_object.used": "PySetObject.used",  # 3.14+
    "set_object.table": "PySetObject.table",
    "set_object.mask": "PySetObject.mask",
    "dict_object.ma_keys": "PyDictObject.ma_keys",
    "dict_object.ma_values": "PyDictObject.ma_values",
    "float_object.ob_fval": "PyFloatObject.ob_fval",
    "long_object.lv_tag": "PyLongObject.lv_tag",
    "long_object.ob_digit": "PyLongObject.ob_digit",
    "bytes_object.ob_sval": "PyBytesObject.ob_sval",
    "unicode_object.state": "PyASCIIObject.state",
    "unicode_object.length": "PyASCIIObject.length",
    "unicode_object.asciiobject_size": "PyASCIIObject.size",
    "unicode_object.compactunicodeobject_size": "PyCompactUnicodeObject.size",  # 3.15+
    "gc.collecting": "_gc_runtime_state.collecting",
    "gen_object.gi_iframe": "PyGenObject.gi_iframe",  # 3.14+
}


def entries_for(version_hex: int) -> dict[str, int] | None:
    """Where each entry sits in this version's struct, or None for a version not generated."""
    return DEBUG_OFFSETS.get(((version_hex >> 24) & 0xFF, (version_hex >> 16) & 0xFF))


def size_for(version_hex: int) -> int:
    """Bytes to read for this version's struct (the header alone when its layout is unknown)."""
    entries = entries_for(version_hex)
    return max(entries.values()) + 8 if entries else HEADER_SIZE


def parse_header(blob: bytes) -> tuple[int, bool] | None:
    """(PY_VERSION_HEX, free_threaded) if ``blob`` starts with the cookie."""
    if len(blob) < HEADER_SIZE or blob[:8] != COOKIE:
        return None
    version, free_threaded = struct.unpack_from("<QQ", blob, 8)
    return int(version), bool(free_threaded)


def parse_raw(blob: bytes, version_hex: int) -> dict[str, int] | None:
    """Every entry of the struct, by its C name ("group.field"), for the versions we know."""
    entries = entries_for(version_hex)
    if entries is None or len(blob) < max(entries.values()) + 8:
        return None
    return {name: int(struct.unpack_from("<Q", blob, offset)[0]) for name, offset in entries.items()}


def parse_offsets(blob: bytes, version_hex: int) -> dict[str, int] | None:
    """Our field names -> offsets, for the versions whose struct we know."""
    raw = parse_raw(blob, version_hex)
    if raw is None:
        return None
    return {ours: raw[theirs] for theirs, ours in FIELDS.items() if theirs in raw}
