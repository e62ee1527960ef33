"""Check the target's own ``_Py_DebugOffsets`` before trusting them.

They live in the target's memory (the start of ``_PyRuntime``, 3.13+), so
they are as hostile as the rest of it: one corrupted entry (a frame size of
2**63, a ``tp_name`` offset past ``tp_flags``) used to send the frame walk
and the type reader into ``struct.error``, ``IndexError`` and
``OverflowError``. A build may legitimately differ from the generated table
(a ``Py_TRACE_REFS`` build puts 16 more bytes in every ``PyObject``), but it
never reorders a struct's members, misaligns them, or makes a struct absurdly
small or large. Offsets failing that are ignored as a whole, with a warning,
and the generated table is used.
"""

from __future__ import annotations

from collections.abc import Mapping

# A struct is never more than this much bigger (or smaller) than the generated
# table says: debug builds add a few words, nothing multiplies it.
SIZE_FACTOR = 4
SIZE_SLACK = 64
# Upper bound for any member offset of a struct whose size is not known
# (PyInterpreterState is ~200 KiB in 3.13 with its embedded tables).
MAX_OFFSET = 1 << 20
# Object structs whose layout a minor version fixes (the ABI): a build only
# adds to them (Py_TRACE_REFS, Py_STATS), so no member moves down.
OBJECT_STRUCTS = frozenset({
    "PyObject", "PyVarObject", "PyTypeObject", "PyTupleObject", "PyListObject", "PyDictObject", "PyFloatObject",
    "PyLongObject", "PyBytesObject", "PyASCIIObject", "PyCodeObject",
})


def _alignment(offset: int) -> int:
    """The alignment the generated offset implies (a member after a char may be odd)."""
    low = offset & -offset if offset else 8
    return min(8, low)


def _struct(name: str) -> str:
    return name.split(".", 1)[0]


def problem(found: Mapping[str, int], table: Mapping[str, int]) -> str | None:
    """Why ``found`` (layout field -> offset, from the target) cannot be trusted, or None."""
    sizes: dict[str, int] = {}
    for name, value in found.items():
        if not name.endswith(".size"):
            continue
        expected = table.get(name)
        if expected is not None and not (expected // SIZE_FACTOR <= value <= expected * SIZE_FACTOR + SIZE_SLACK):
            return f"{name} is {value}, the generated table says {expected}"
        if not 0 < value <= MAX_OFFSET:
            return f"{name} is {value}"
        sizes[_struct(name)] = value
    for name, value in found.items():
        if name.endswith(".size"):
            continue
        limit = sizes.get(_struct(name)) or table.get(f"{_struct(name)}.size") or MAX_OFFSET
        if not 0 <= value < limit:
            return f"{name} is {value}, outside its struct ({limit} bytes)"
        expected = table.get(name)
        if expected is not None and value % _alignment(expected):
            return f"{name} is {value}, misaligned (the generated table says {expected})"
        if expected is not None and value < expected and _struct(name) in OBJECT_STRUCTS:
            return f"{name} is {value}, before where every build has it ({expected})"
    by_struct: dict[str, list[str]] = {}
    for name in found:
        if not name.endswith(".size") and name in table:
            by_struct.setdefault(_struct(name), []).append(name)
    for names in by_struct.values():
        ordered = sorted(names, key=lambda n: (table[n], n))
        for before, after in zip(ordered, ordered[1:]):
            same = table[before] == table[after]
            if (found[before] == found[after]) != same or (not same and found[before] > found[after]):
                return (f"{before} ({found[before]}) and {after} ({found[after]}) are out of the order "
                        f"C declares them in ({table[before]}, {table[after]})")
    return None
