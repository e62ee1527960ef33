"""A code object's bytecode read from memory: instructions, jump targets, names.

Code units are two bytes (opcode, oparg). EXTENDED_ARG prefixes widen the
next oparg; 3.11+ instructions are followed by inline cache units
(Include/internal/pycore_code.h), and the interpreter rewrites opcodes in
place into specialized forms (3.11+ co_code_adaptive), each read here as
its base instruction. What changes across versions is data: the generated
tables (bytecode_generated.py, from each interpreter's ``dis``) and
FORMATS below.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import PylifeError
from .bytecode_generated import BASE, CACHES, JUMPS_ABSOLUTE, JUMPS_RELATIVE
from .frames import CodeInfo
from .objects import Objects
from .opcodes_generated import OPNAMES

MAX_CODE_UNITS = 1 << 16  # a longer function is not decoded (budget)
EXTENDED_ARGS = frozenset({"EXTENDED_ARG", "EXTENDED_ARG_QUICK"})


@dataclass(frozen=True)
class Format:
    """How one CPython minor encodes what the bytecode reader needs."""

    jump_arg_bytes: bool  # 3.8/3.9: jump opargs count bytes, not code units (Python/compile.c)
    global_name_shift: int  # 3.11+: LOAD_GLOBAL's co_names index is oparg >> 1 (bit 0: push NULL)
    attr_name_shift: int  # 3.12+: LOAD_ATTR's co_names index is oparg >> 1 (bit 0: method load)


FORMATS: dict[tuple[int, int], Format] = {
    (3, 8): Format(True, 0, 0),
    (3, 9): Format(True, 0, 0),
    (3, 10): Format(False, 0, 0),
    (3, 11): Format(False, 1, 0),
    (3, 12): Format(False, 1, 1),
    (3, 13): Format(False, 1, 1),
    (3, 14): Format(False, 1, 1),
    (3, 15): Format(False, 1, 1),
}


@dataclass(frozen=True)
class Instruction:
    start: int  # code unit of its first EXTENDED_ARG prefix, else of its opcode
    index: int  # code unit of its opcode
    name: str  # the base instruction (a specialized form reads as what it specializes)
    arg: int
    end: int  # code unit of the next instruction (inline caches skipped)


def code_units(objects: Objects, code: CodeInfo) -> bytes:
    """The code object's code units as bytes; PylifeError when unreadable or over budget."""
    L = objects.layout
    if not code.code_units_base:
        raise PylifeError(f"code at {code.address:#x} has no readable bytecode")
    if L.has("PyCodeObject.co_code_adaptive"):  # 3.11+: ob_size counts code units (_PyCode_NBYTES)
        count = objects.var_size(code.address)
    else:  # <= 3.10: co_code is a bytes object
        count = objects.var_size(code.code_units_base - L["PyBytesObject.ob_sval"]) // 2
    if not 0 < count <= MAX_CODE_UNITS:
        raise PylifeError(f"code at {code.address:#x} claims {count} code units")
    return objects.mem.read(code.code_units_base, 2 * count)


def decode(units: bytes, key: tuple[int, int]) -> list[Instruction]:
    """Instructions in order; an unknown opcode reads as "?" (never matched by a rule)."""
    names = OPNAMES.get(key, {})
    base = BASE.get(key, {})
    caches = CACHES.get(key, {})
    result: list[Instruction] = []
    extended = 0
    start = 0
    index = 0
    count = len(units) // 2
    while index < count:
        opcode, arg = units[2 * index], units[2 * index + 1]
        name = names.get(opcode, "?")
        name = base.get(name, name)
        arg |= extended << 8
        if name in EXTENDED_ARGS:
            extended = arg
            index += 1
            continue
        end = index + 1 + caches.get(name, 0)
        result.append(Instruction(start, index, name, arg, end))
        extended = 0
        index = start = end
    return result


def jump_targets(instructions: list[Instruction], key: tuple[int, int]) -> set[int]:
    """Code units some jump lands on (and the unit after each: 3.12+ FOR_ITER skips END_FOR).

    Exception-table handlers (3.11+) are not included: a handler starts with
    PUSH_EXC_INFO or a cleanup sequence, never where the rules here look."""
    fmt = FORMATS.get(key)
    relative = JUMPS_RELATIVE.get(key, frozenset())
    absolute = JUMPS_ABSOLUTE.get(key, frozenset())
    scale = 2 if fmt is None or fmt.jump_arg_bytes else 1
    targets: set[int] = set()
    for ins in instructions:
        if ins.name in absolute:
            target = ins.arg // scale
        elif ins.name in relative:
            target = ins.end - ins.arg // scale if "BACKWARD" in ins.name else ins.end + ins.arg // scale
        else:
            continue
        targets.update((target, target + 1))
    return targets


def at(instructions: list[Instruction], unit: int) -> int | None:
    """Position in ``instructions`` of the instruction whose opcode or prefix is at ``unit``."""
    for position, ins in enumerate(instructions):
        if ins.start <= unit <= ins.index:
            return position
        if ins.start > unit:
            return None
    return None
