"""Which call handed the interpreter the reference it is releasing (issue 10, point 7).

When the eval loop drops a reference with DELETE_FAST / STORE_FAST (the
local's old value) or POP_TOP, the bytecode says where that reference came
from: the local was stored by the STORE_FAST right after a CALL, or the
POP_TOP pops a CALL's result. The callee is read back from the instructions
that loaded it (a dotted name, then plain loads of the arguments), resolved
in the frame's names from memory, and named when it is a builtin function:
its PyMethodDef's C function (Include/methodobject.h). Nothing here calls
into the inferior.

This module only states what the bytecode and memory say. Whether the
reference was returned without being counted is the balance's judgement
(record/balance.py), from the recorded history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import PylifeError
from ..target import Target
from .attributes import Reader
from .bytecode import FORMATS, Instruction, at, code_units, decode, jump_targets
from .expression import evaluate, parse
from .frames import PyFrame, line_for
from .names import frame_names, lookup_name
from .objects import Objects

RELEASES_LOCAL = frozenset({"DELETE_FAST", "STORE_FAST"})  # Py_XDECREF of the local's old value (SETLOCAL)
RELEASES_TOP = frozenset({"POP_TOP"})
# A call whose stack holds the callable and exactly oparg positional arguments (keyword calls are not read).
CALLS = frozenset({"CALL", "CALL_FUNCTION", "CALL_METHOD"})
PRECALLS = frozenset({"PRECALL"})  # 3.11: PRECALL n; CALL n
ARGUMENT_PUSHES = {"LOAD_FAST": 1, "LOAD_FAST_CHECK": 1, "LOAD_FAST_BORROW": 1, "LOAD_CONST": 1, "LOAD_SMALL_INT": 1,
                   "LOAD_DEREF": 1, "LOAD_NAME": 1, "LOAD_FAST_LOAD_FAST": 2, "LOAD_FAST_BORROW_LOAD_FAST_BORROW": 2}
PUSH_NULLS = frozenset({"PUSH_NULL"})
ATTRIBUTE_LOADS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
LOCAL_LOADS = frozenset({"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_BORROW"})
BUILTIN_FUNCTION_TYPES = frozenset({"builtin_function_or_method", "builtin_method"})  # PyCFunction_Type, PyCMethod_Type
ML_METH_OFFSET = 8  # PyMethodDef { const char *ml_name; PyCFunction ml_meth; ... } (Include/methodobject.h)


@dataclass(frozen=True)
class CallRelease:
    """The released reference was the result of the call at ``call`` (code units) in ``code``."""

    op: str  # the releasing instruction
    local: str | None  # the local it released (None: the value stack's top)
    code: int  # code object address
    call: int  # first code unit of the CALL (its EXTENDED_ARG prefixes included)
    release_end: int  # code unit after the releasing instruction
    call_line: int | None
    callee: str  # the dotted name the CALL called, e.g. "buggy.get_borrowed"
    function: str  # the C function behind it (PyMethodDef.ml_meth)
    module: str | None  # its image

    def to_json(self, covered: bool) -> dict[str, Any]:
        """``covered``: the watch was set before this call began (the recorder knows)."""
        return {"op": self.op, "local": self.local, "call_line": self.call_line, "callee": self.callee,
                "function": self.function, "module": self.module, "watched_before_call": covered}


def call_release(target: Target, objects: Objects, frame: PyFrame) -> CallRelease | None:
    """What the bytecode proves about the reference ``frame``'s current instruction releases,
    or None when it proves nothing (another instruction, a jump joins in, an unknown callee)."""
    code = frame.code
    fmt = FORMATS.get(objects.layout.key)
    if code is None or frame.instr_index is None or fmt is None:
        return None
    try:
        instructions = decode(code_units(objects, code), objects.layout.key)
    except PylifeError:
        return None
    here = at(instructions, frame.instr_index)
    if here is None:
        return None
    release = instructions[here]
    joined = jump_targets(instructions, objects.layout.key)
    if release.start in joined:
        return None  # reached from elsewhere too: the value may not be the call's
    local: str | None = None
    before = here - 1
    if release.name in RELEASES_LOCAL:
        store = instructions[before] if before >= 0 else None
        if store is None or store.name != "STORE_FAST" or store.arg != release.arg or store.start in joined:
            return None
        local = _local_name(objects, frame, release.arg)
        before -= 1
    elif release.name not in RELEASES_TOP:
        return None
    if before < 0 or instructions[before].name not in CALLS:
        return None
    call = instructions[before]
    callee = _callee(instructions, before, code.address, objects, fmt.global_name_shift, fmt.attr_name_shift, frame)
    if callee is None:
        return None
    named = _c_function(target, objects, frame, callee)
    if named is None:
        return None
    function, module = named
    return CallRelease(release.name, local, code.address, _call_start(instructions, before), release.end,
                       line_for(objects.layout.key, code, call.index), callee, function, module)


def _call_start(instructions: list[Instruction], position: int) -> int:
    """3.11: the call begins at its PRECALL."""
    if position > 0 and instructions[position - 1].name in PRECALLS:
        return instructions[position - 1].start
    return instructions[position].start


def _callee(instructions: list[Instruction], position: int, code: int, objects: Objects, global_shift: int,
            attr_shift: int, frame: PyFrame) -> str | None:
    """The dotted name loaded as the callable of the CALL at ``position``: plain loads of its
    oparg arguments come right before it, and the name's loads before them."""
    wanted = instructions[position].arg
    position -= 1
    if position >= 0 and instructions[position].name in PRECALLS:
        position -= 1
    while wanted > 0 and position >= 0:
        ins = instructions[position]
        pushes = ARGUMENT_PUSHES.get(ins.name)
        if pushes is None and ins.name == "LOAD_GLOBAL" and not (global_shift and ins.arg & 1):
            pushes = 1
        if pushes is None:
            return None
        wanted -= pushes
        position -= 1
    if wanted != 0:
        return None
    if position >= 0 and instructions[position].name in PUSH_NULLS:  # 3.13: callable; NULL; arguments
        position -= 1
    attributes: list[str] = []
    try:
        names = _code_names(objects, code)
        while position >= 0 and instructions[position].name in ATTRIBUTE_LOADS:
            ins = instructions[position]
            attributes.insert(0, names[ins.arg >> (attr_shift if ins.name == "LOAD_ATTR" else 0)])
            position -= 1
        if position < 0:
            return None
        root = instructions[position]
        if root.name == "LOAD_GLOBAL":
            first = names[root.arg >> global_shift]
        elif root.name == "LOAD_NAME":
            first = names[root.arg]
        elif root.name in LOCAL_LOADS:
            first = _local_name(objects, frame, root.arg) or ""
        else:
            return None
    except (IndexError, PylifeError):
        return None
    dotted = ".".join([first, *attributes])
    return dotted if all(part.isidentifier() for part in [first, *attributes]) else None


def _code_names(objects: Objects, code: int) -> list[str]:
    o = objects
    pointer = o.mem.ptr(code + o.layout["PyCodeObject.co_names"])
    if not o.is_kind(pointer, "tuple"):
        raise PylifeError(f"code at {code:#x}: co_names is not a tuple")
    items, _count = o.sequence_items(pointer, "tuple", 1 << 16)
    return [o.str_value(item, 256)[0] if o.is_kind(item, "str") else "" for item in items]


def _local_name(objects: Objects, frame: PyFrame, slot: int) -> str | None:
    try:
        slots = frame_names(Reader(objects), frame).slots
    except PylifeError:
        return None
    return slots[slot][0] if 0 <= slot < len(slots) else None


def _c_function(target: Target, objects: Objects, frame: PyFrame, callee: str) -> tuple[str, str | None] | None:
    """The C function of the builtin ``callee`` names in ``frame`` (resolved from memory now:
    the straight-line code since the call rebinds no name it used)."""
    reader = Reader(objects)
    try:
        names = frame_names(reader, frame)
        address = evaluate(parse(callee), reader, lambda name: lookup_name(reader, names, name, "the frame"))
        tp = objects.type_of(address)
        if tp.is_heap or tp.name not in BUILTIN_FUNCTION_TYPES:
            return None
        method_def = objects.mem.ptr(address + objects.layout["PyObject.size"])  # PyCFunctionObject.m_ml
        c_function = objects.mem.ptr(method_def + ML_METH_OFFSET)
    except PylifeError:
        return None
    return target.function_at(c_function) if c_function else None
