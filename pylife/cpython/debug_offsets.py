"""Parse ``_Py_DebugOffsets`` at the start of ``_PyRuntime`` (3.13+, Include/internal/pycore_runtime.h).

The struct is a cookie, the version, a free-threaded flag and then groups of
uint64 entries, each group starting with the struct size. Only the 3.13 order
is verified here (cpython-internals.md §9); for other versions we still read
the header (version, free-threaded) but not the groups.
"""

from __future__ import annotations

import struct

COOKIE = b"xdebugpy"

# 3.13 group order, mapped to our layout field names (None: not used by pylife).
_GROUPS_3_13: list[tuple[str, list[str | None]]] = [
    ("runtime_state", [None, None, "_PyRuntimeState.interpreters_head"]),
    ("interpreter_state", [None, "PyInterpreterState.id", "PyInterpreterState.next",
                           "PyInterpreterState.threads_head", "PyInterpreterState.gc",
                           "PyInterpreterState.modules", "PyInterpreterState.sysdict", None,
                           "PyInterpreterState.ceval_gil", None, None, None, None]),
    ("thread_state", [None, None, "PyThreadState.next", "PyThreadState.interp",
                      "PyThreadState.current_frame", "PyThreadState.thread_id",
                      "PyThreadState.native_thread_id", None, None]),
    ("interpreter_frame", ["_PyInterpreterFrame.size", "_PyInterpreterFrame.previous",
                           "_PyInterpreterFrame.code", "_PyInterpreterFrame.instr", None,
                           "_PyInterpreterFrame.owner"]),
    ("code_object", [None, "PyCodeObject.co_filename", "PyCodeObject.co_name",
                     "PyCodeObject.co_qualname", "PyCodeObject.co_linetable",
                     "PyCodeObject.co_firstlineno", None, None, None, "PyCodeObject.co_code_adaptive"]),
    ("pyobject", ["PyObject.size", "PyObject.ob_type"]),
    ("type_object", ["PyTypeObject.size", "PyTypeObject.tp_name", None, "PyTypeObject.tp_flags"]),
    ("tuple_object", [None, "PyTupleObject.ob_item", "PyVarObject.ob_size"]),
    ("list_object", [None, "PyListObject.ob_item", "PyVarObject.ob_size"]),
    ("dict_object", [None, "PyDictObject.ma_keys", "PyDictObject.ma_values"]),
    ("float_object", [None, "PyFloatObject.ob_fval"]),
    ("long_object", [None, "PyLongObject.lv_tag", "PyLongObject.ob_digit"]),
    ("bytes_object", [None, "PyVarObject.ob_size", "PyBytesObject.ob_sval"]),
    ("unicode_object", [None, "PyASCIIObject.state", "PyASCIIObject.length", "PyASCIIObject.size"]),
    ("gc", [None, "_gc_runtime_state.collecting"]),
]
HEADER_SIZE = 24
SIZE_3_13 = HEADER_SIZE + 8 * sum(len(fields) for _, fields in _GROUPS_3_13)


def parse_header(blob: bytes) -> tuple[int, bool] | None:
    """(PY_VERSION_HEX, free_threaded) if ``blob`` starts with the cookie."""
    if len(blob) < HEADER_SIZE or blob[:8] != COOKIE:
        return None
    version, free_threaded = struct.unpack_from("<QQ", blob, 8)
    return int(version), bool(free_threaded)


def parse_offsets(blob: bytes, version_hex: int) -> dict[str, int] | None:
    """Our field names -> offsets, for the versions whose order we know."""
    if (version_hex >> 16) != 0x030D or len(blob) < SIZE_3_13:
        return None
    values = struct.unpack_from(f"<{(SIZE_3_13 - HEADER_SIZE) // 8}Q", blob, HEADER_SIZE)
    result: dict[str, int] = {}
    index = 0
    for _group, fields in _GROUPS_3_13:
        for name in fields:
            if name is not None:
                result[name] = int(values[index])
            index += 1
    return result
