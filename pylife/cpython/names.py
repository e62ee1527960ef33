"""Names in one Python frame, read from memory: fast locals, cells, free vars, globals, builtins.

3.8-3.10 (Include/cpython/frameobject.h): ``f_localsplus`` holds co_nlocals
locals (names in co_varnames), then one cell per co_cellvars name, then one
per co_freevars name. 3.11+ (Include/internal/pycore_frame.h,
pycore_code.h): ``localsplus`` holds co_nlocalsplus slots named by
co_localsplusnames, each with a kind byte in co_localspluskinds (CO_FAST_LOCAL,
CO_FAST_CELL, CO_FAST_FREE). A cell slot holds its PyCellObject once
MAKE_CELL / COPY_FREE_VARS ran; before that, the raw value (an argument).
Frames of code without CO_OPTIMIZED (modules, class bodies) keep their
names in the f_locals dict instead.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import NotAnObject, PylifeError, UserError
from ..target import Memory
from .attributes import Reader
from .frames import PyFrame

# Include/cpython/code.h co_flags; Include/internal/pycore_code.h _PyLocals_Kind (3.11+).
CO_OPTIMIZED = 0x1
CO_FAST_LOCAL = 0x20
CO_FAST_CELL = 0x40
CO_FAST_FREE = 0x80
MAX_LOCALS = 1 << 16


@dataclass(frozen=True)
class FrameNames:
    """Where one frame's names live."""

    slots: list[tuple[str, int, bool]]  # (name, slot value, may hold a cell) in localsplus order
    locals_dict: int  # f_locals of a non-optimized frame (module, class body), else 0
    globals_dict: int
    builtins_dict: int


def frame_names(reader: Reader, frame: PyFrame) -> FrameNames:
    o = reader.objects
    L = o.layout
    mem = o.mem
    if frame.code is None:
        raise UserError(f"frame at {frame.address:#x} has no readable code object")
    code = frame.code.address
    old_style = not L.has("_PyInterpreterFrame.size")
    prefix = "PyFrameObject." if old_style else "_PyInterpreterFrame."
    globals_dict = mem.ptr(frame.address + L[prefix + "f_globals"])
    builtins_dict = mem.ptr(frame.address + L[prefix + "f_builtins"])
    f_locals = mem.ptr(frame.address + L[prefix + "f_locals"])
    optimized = bool(mem.i32(code + L["PyCodeObject.co_flags"]) & CO_OPTIMIZED)
    base = frame.address + L[prefix + ("f_localsplus" if old_style else "localsplus")]
    if old_style:
        nlocals = mem.i32(code + L["PyCodeObject.co_nlocals"])
        names = _names(reader, code, "PyCodeObject.co_varnames")[:max(0, nlocals)]
        cells = _names(reader, code, "PyCodeObject.co_cellvars")
        frees = _names(reader, code, "PyCodeObject.co_freevars")
        kinds = [False] * len(names) + [True] * (len(cells) + len(frees))
        names = names + [""] * (max(0, nlocals) - len(names)) + cells + frees
    else:
        count = mem.i32(code + L["PyCodeObject.co_nlocalsplus"])
        names = _names(reader, code, "PyCodeObject.co_localsplusnames")
        kind_bytes = _bytes(reader, code, "PyCodeObject.co_localspluskinds")
        if not 0 <= count <= MAX_LOCALS or len(names) != count or len(kind_bytes) != count:
            raise NotAnObject(f"code at {code:#x} has inconsistent co_nlocalsplus {count}")
        kinds = [bool(k & (CO_FAST_CELL | CO_FAST_FREE)) for k in kind_bytes]
    values = _read_words(mem, base, len(names))
    tags = L.frame_slot_tag_bits()
    slots = [(n, _untag(v, tags, n), k) for n, v, k in zip(names, values, kinds)]
    # A module's frame has f_locals == f_globals: searched once, as the globals.
    locals_dict = 0 if optimized or f_locals == globals_dict else f_locals
    return FrameNames(slots, locals_dict, globals_dict, builtins_dict)


def _untag(value: int, tag_bits: int, name: str) -> int:
    if tag_bits and value & tag_bits == tag_bits:  # 3.15 Py_INT_TAG: an int that is no object in memory
        raise UserError(f"local {name!r} holds an unboxed int (a _PyStackRef tag): there is no object to name")
    return value & ~tag_bits


def _names(reader: Reader, code: int, field: str) -> list[str]:
    o = reader.objects
    pointer = o.mem.ptr(code + o.layout[field])
    if not o.is_kind(pointer, "tuple"):
        raise NotAnObject(f"code at {code:#x}: {field.split('.')[-1]} is not a tuple")
    items, count = o.sequence_items(pointer, "tuple", MAX_LOCALS)
    if count > MAX_LOCALS:
        raise NotAnObject(f"code at {code:#x}: {field.split('.')[-1]} has {count} names")
    return [o.str_value(item, 256)[0] if o.is_kind(item, "str") else "" for item in items]


def _bytes(reader: Reader, code: int, field: str) -> bytes:
    o = reader.objects
    pointer = o.mem.ptr(code + o.layout[field])
    if not o.is_kind(pointer, "bytes"):
        raise NotAnObject(f"code at {code:#x}: {field.split('.')[-1]} is not bytes")
    size = o.var_size(pointer)
    if not 0 <= size <= MAX_LOCALS:
        raise NotAnObject(f"code at {code:#x}: {field.split('.')[-1]} has {size} bytes")
    return o.mem.read(pointer + o.layout["PyBytesObject.ob_sval"], size)


def _read_words(mem: Memory, base: int, count: int) -> list[int]:
    if count == 0:
        return []
    return [word for (word,) in struct.iter_unpack("<Q", mem.read(base, 8 * count))]


def lookup_name(reader: Reader, names: FrameNames, name: str, where: str) -> int:
    """The object ``name`` means in the frame: locals (fast, cells, free), then globals, then builtins."""
    o = reader.objects
    unbound = False
    for slot_name, value, may_be_cell in names.slots:
        if slot_name != name:
            continue
        if value and may_be_cell and _is_cell(reader, value):
            value = o.mem.ptr(value + o.layout["PyCellObject.ob_ref"])
        if value:
            return value
        unbound = True
    if unbound:
        raise UserError(f"local variable {name!r} is not bound yet in {where}")
    searched = [f"the locals of {where}"]
    for label, dict_address in (("locals dict", names.locals_dict), ("globals", names.globals_dict),
                                ("builtins", names.builtins_dict)):
        if not dict_address:
            continue
        if not o.is_kind(dict_address, "dict"):
            searched.append(f"the {label} (unreadable: not a dict at {dict_address:#x})")
            continue
        try:
            found = reader.dict_lookup(dict_address, name)
        except PylifeError as exc:
            searched.append(f"the {label} (unreadable: {exc})")
            continue
        if found is not None:
            return found
        searched.append(f"the {label}" + (f" of module {_module_name(reader, dict_address)!r}" if label == "globals" else ""))
    raise UserError(f"name {name!r} is not defined: searched {', '.join(searched)}")


def _is_cell(reader: Reader, address: int) -> bool:
    try:
        tp = reader.objects.type_of(address)
    except PylifeError:
        return False
    return tp.name == "cell" and not tp.is_heap


def _module_name(reader: Reader, globals_dict: int) -> str:
    try:
        value = reader.dict_lookup(globals_dict, "__name__")
        if value and reader.objects.is_kind(value, "str"):
            return reader.objects.str_value(value, 200)[0]
    except PylifeError:
        pass
    return "?"
