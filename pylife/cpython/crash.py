"""What a crash stop looks like from CPython's side (cpython-internals.md §6, §10).

- Fatal errors: ``Py_FatalError`` (3.8) / ``_Py_FatalErrorFunc`` (3.9+),
  ``fatal_error`` (pylifecycle.c), ``_Py_FatalRefcountErrorFunc`` (3.11+),
  ``_Py_NegativeRefcount`` (Py_REF_DEBUG builds), ``_PyObject_AssertFailed``,
  and the debug allocator's checks (``_PyMem_DebugCheckAddress``: "bad ID",
  "bad leading/trailing pad byte"), found by name on the C stack; their
  message and object are read from the frames' arguments when debug info
  keeps them.
- glibc's own heap checks (``malloc_printerr``: "double free detected ...").
- The pointers worth checking: the fatal error's object, pointer arguments of
  the innermost C frames, and the general-purpose registers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import UnreadableMemory
from ..target import FrameArguments, Memory, NativeFrame, StopInfo
from .culprit import HEADER_HELPERS
from .objects import plausible_pointer
from .stack import EVAL_FUNCTIONS

# Function -> (category, names of its message arguments, name of its object argument).
FATAL_FUNCTIONS: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "_Py_NegativeRefcount": ("negative-refcount", (), "op"),
    "_Py_FatalRefcountErrorFunc": ("refcount", ("msg",), None),
    "_PyObject_AssertFailed": ("object-assert", ("msg", "expr"), "obj"),
    "_PyMem_DebugCheckAddress": ("debug-allocator", (), "p"),
    "_Py_FatalErrorFunc": ("fatal", ("msg",), None),
    "_Py_FatalErrorFormat": ("fatal", ("format",), None),
    "Py_FatalError": ("fatal", ("msg",), None),
    "fatal_error": ("fatal", ("msg",), None),
    "malloc_printerr": ("glibc", ("str",), None),
}
# The debug hooks' functions whose `p` is the block being checked or freed.
DEBUG_HOOK_FUNCTIONS = frozenset({"_PyMem_DebugRawFree", "_PyMem_DebugFree", "_PyMem_DebugRawRealloc",
                                  "_PyMem_DebugRealloc", "_PyMem_DebugCheckAddress"})
DEALLOC_FUNCTIONS = re.compile(r"(^_Py_Dealloc$|_dealloc$|^_Py_DECREF|^Py_DECREF|^Py_DecRef$|^_Py_DecRef$)")
FREE_FUNCTIONS = re.compile(r"(^free$|^__libc_free$|^_int_free|^PyObject_Free$|^_PyObject_Free$|^pymalloc_free$|"
                            r"^PyObject_GC_Del$|^PyMem_Free$|^PyMem_RawFree$|^_PyMem_RawFree$)")
MAX_MESSAGE = 512
# A popped value-stack slot keeps its old pointer, often to an object freed legitimately since
# (and 0xDD-filled under PYTHONMALLOC=debug): shown, never evidence of a kind.
PYTHON_LEFTOVER = "python-leftover"
WEAK_ROLES = frozenset({"register", PYTHON_LEFTOVER})
POINTER_TYPE = re.compile(r"\*\s*(const\s*)?$")
OBJECT_TYPE = re.compile(r"Object\b|\bPyObject\b|_object\b")


@dataclass(frozen=True)
class FatalError:
    function: str  # the recognised function
    category: str  # negative-refcount, refcount, object-assert, debug-allocator, fatal, glibc
    message: str | None
    origin: str | None  # the C function that raised it (_Py_FatalErrorFunc's `func`), when known
    objects: tuple[int, ...]  # object (or block) pointers named by its arguments


@dataclass(frozen=True)
class Candidate:
    address: int
    source: str  # "argument v of PyObject_Repr", "register rdi", ...
    typed: bool = False  # declared as an object (PyObject *, PyListObject *, ...) or named by a fatal error
    crashing: bool = False  # an argument or local of the crashing frame (or of the frames inlined at its pc)
    role: str = "argument"  # fatal, argument, local, register, python (a Python frame's), python-leftover
    deallocated: bool = False  # the argument of a deallocator on the stack: the object being deallocated


def _string(mem: Memory, address: int | None) -> str | None:
    if not address or not plausible_pointer(address):
        return None
    try:
        raw = mem.cstring(address, MAX_MESSAGE)
    except UnreadableMemory:
        return None
    return raw.decode("utf-8", "replace") or None


def _argument(frame: FrameArguments, name: str) -> int | None:
    for argument in frame.arguments:
        if argument.name == name:
            return argument.value
    return None


def recognise_fatal(native: Sequence[NativeFrame], frames: Sequence[FrameArguments], mem: Memory) -> FatalError | None:
    """The innermost recognised fatal-error function on the stack, with what its arguments say."""
    names = [f.function or "" for f in native] or [f.function or "" for f in frames]
    by_name = {f.function: f for f in frames if f.function}
    message: str | None = None
    message_rank = -1  # the message of the most specific function that has one wins
    origin: str | None = None
    objects: list[int] = []
    category: str | None = None
    function: str | None = None
    for name in names[:64]:
        spec = FATAL_FUNCTIONS.get(name)
        frame = by_name.get(name)
        if name in DEBUG_HOOK_FUNCTIONS and frame is not None:
            block = _argument(frame, "p")
            if block:
                objects.append(block)
        if spec is None:
            continue
        kind, message_args, object_arg = spec
        # The most specific category wins (a negative refcount also goes through _Py_FatalErrorFunc).
        if category is None or _RANK[kind] > _RANK[category]:
            category, function = kind, name
        if frame is None:
            continue
        for arg in message_args:
            text = _string(mem, _argument(frame, arg)) if _RANK[kind] > message_rank else None
            if text:
                # _PyObject_AssertFailed's "object has negative ref count", not the
                # "_PyObject_AssertFailed" it hands on to Py_FatalError.
                message, message_rank = text, _RANK[kind]
        if name in ("_Py_FatalErrorFunc", "_Py_FatalRefcountErrorFunc", "_Py_FatalErrorFormat"):
            origin = origin or _string(mem, _argument(frame, "func"))
        if name == "fatal_error":
            origin = origin or _string(mem, _argument(frame, "prefix"))
        if object_arg:
            value = _argument(frame, object_arg)
            if value:
                objects.append(value)
    if category is None or function is None:
        return None
    if category == "fatal" and message and ("pad byte" in message or "bad ID" in message):
        category = "debug-allocator"
    return FatalError(function, category, message, origin, tuple(dict.fromkeys(objects)))


_RANK = {"fatal": 0, "glibc": 1, "refcount": 2, "object-assert": 3, "debug-allocator": 4, "negative-refcount": 5}


def candidates(stop: StopInfo | None, fatal: FatalError | None, untyped_frames: int = 4) -> list[Candidate]:
    """Pointers worth a verdict, most telling first, without duplicates.

    Arguments declared as objects are checked in every frame given, and
    object locals in every C frame down to the first eval loop (a stale
    pointer often survives only in the local of a caller); other pointer
    arguments (and the registers) only near the crash. Callers trust only
    ALIVE verdicts and freed block starts from untyped sources: a register
    often still holds a pointer to a struct that is no PyObject."""
    found: list[Candidate] = []
    if fatal is not None:
        what = "the block checked by" if fatal.category == "debug-allocator" else "the object of"
        for address in fatal.objects:
            # A debug-hooks `p` is the data pointer: the object follows its pre-header, if any.
            for pre in (0, 16, 32):
                found.append(Candidate(address + pre, f"{what} {fatal.function}", typed=True, role="fatal"))
    if stop is not None:
        frames = stop.frames
        top_pc = frames[0].pc if frames else None
        eval_depth = next((d for d, f in enumerate(frames) if f.function in EVAL_FUNCTIONS), len(frames))
        # The crashing frame: the innermost one, the frames inlined at its pc, and the caller of a
        # header helper it crashed in.
        crashing_depth = 0
        while crashing_depth + 1 < len(frames) and (
                frames[crashing_depth + 1].pc == top_pc
                or HEADER_HELPERS.match(frames[crashing_depth].function or "")):
            crashing_depth += 1
        for depth, frame in enumerate(frames):
            crashing = depth <= crashing_depth
            name = frame.function or hex(frame.pc)
            deallocator = bool(frame.function and DEALLOC_FUNCTIONS.search(frame.function))
            variables = [(a, "argument") for a in frame.arguments]
            if depth < eval_depth:
                variables += [(v, "local") for v in frame.locals]
            for variable, role in variables:
                if not variable.value or not POINTER_TYPE.search(variable.type) or "char" in variable.type:
                    continue
                typed = bool(OBJECT_TYPE.search(variable.type)) and "PyThreadState" not in variable.type
                if not typed and (depth >= untyped_frames or role == "local"):
                    continue
                where = f"{role} {variable.name} of {name}"
                found.append(Candidate(variable.value, f"{where} (the crashing frame)" if crashing else where,
                                       typed=typed, crashing=crashing, role=role,
                                       deallocated=typed and deallocator and role == "argument"))
        for register in ("rdi", "rsi", "rdx", "rcx", "r8", "r9", "rax", "rbx", "r12", "r13", "r14", "r15", "rbp"):
            value = stop.registers.get(register)
            if value:
                found.append(Candidate(value, f"register {register}", role="register"))
    # Typed sources first, so that a pointer seen both as `PyObject *op` and in a register is typed;
    # the object being deallocated before the other arguments of the crashing frame.
    found.sort(key=lambda c: (not c.typed, not (c.crashing or c.deallocated), c.role == "local"))
    seen: set[int] = set()
    unique: list[Candidate] = []
    for candidate in found:
        if candidate.address not in seen and plausible_pointer(candidate.address) and candidate.address % 8 == 0:
            seen.add(candidate.address)
            unique.append(candidate)
    return unique


_MEMORY_OPERAND = re.compile(r"\[([^\]]+)\]")
_TERM = re.compile(r"([+-])?(?:([1248])\*)?([a-z0-9]+)(?:\*([1248]))?")  # LLVM prints 4*rcx
_REGISTER_ALIASES = {"e" + r[1:]: r for r in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp")}
_REGISTER_ALIASES.update({f"r{n}d": f"r{n}" for n in range(8, 16)})


def fault_from_instruction(instruction: str | None, registers: dict[str, int]) -> int | None:
    """The address the faulting instruction's memory operand reads (Intel syntax), computed from the
    crashing frame's registers: where the debugger does not give si_addr (lldb-16 on ELF cores).
    None when there is no single memory operand or a register is unknown (rip-relative, segment)."""
    if not instruction or ":" in instruction:
        return None
    operands = _MEMORY_OPERAND.findall(instruction)
    if len(operands) != 1:
        return None
    total = 0
    text = operands[0].replace(" ", "")
    position = 0
    for match in _TERM.finditer(text):
        if match.start() != position or not match.group(3):
            return None
        position = match.end()
        sign, term, scale = match.group(1), match.group(3), match.group(2) or match.group(4)
        if term.startswith("0x") or term.isdigit():
            value = int(term, 0)
        else:
            name = _REGISTER_ALIASES.get(term, term)
            if name not in registers or name == "rip":
                return None
            value = registers[name] & (0xFFFFFFFF if term != name else (1 << 64) - 1)
        value *= int(scale or 1)
        total += -value if sign == "-" else value
    if position != len(text):
        return None
    return total & ((1 << 64) - 1)


def non_canonical(value: int) -> bool:
    """x86-64: bits 47-63 must all be equal; a load from anywhere else is a general protection fault."""
    top = value >> 47
    return top not in (0, (1 << 17) - 1)


def dead_fill_registers(stop: StopInfo | None) -> list[str]:
    """Registers holding 0xDD fill (a pointer read out of memory freed under PYTHONMALLOC=debug)."""
    if stop is None:
        return []
    return [name for name, value in stop.registers.items() if (value >> 32) == 0xDDDDDDDD or value == 0xDDDDDDDD]


def in_functions(native: Sequence[NativeFrame], pattern: re.Pattern[str], depth: int = 12) -> str | None:
    for frame in native[:depth]:
        if frame.function and pattern.search(frame.function):
            return frame.function
    return None


@dataclass(frozen=True)
class Assessed:
    candidate: Candidate
    verdict: str  # liveness verdict
    type: str | None  # the live type, or the stale type when freed
    reasons: tuple[str, ...]
    refcount: int | None = None


KINDS = ("use-after-free", "double-free", "over-decref", "null-dereference", "corrupt-type",
         "negative-refcount", "fatal-error", "unknown")
EXPLANATIONS = {
    "use-after-free": "use after free: an object was freed while something still pointed at it "
                      "(an extra Py_DECREF, or a borrowed reference kept across a call that freed it)",
    "double-free": "double free: memory was released twice",
    "over-decref": "over-decref: a dead object's refcount reached zero again and it was deallocated a second time",
    "null-dereference": "NULL dereference: a pointer member that is NULL was followed (not a freed object)",
    "corrupt-type": "corrupted object header: ob_type does not point to a type (a buffer overflow or a wild write)",
    "negative-refcount": "negative refcount: Py_DECREF went below zero (one Py_DECREF too many)",
    "fatal-error": "CPython stopped itself with a fatal error",
    "unknown": "no known CPython bug pattern",
}


def classify(signal: str | None, code: int | None, fault: int | None, fatal: FatalError | None,
             assessed: Sequence[Assessed], native: Sequence[NativeFrame], stop: StopInfo | None,
             free_lists: Sequence[str] = ()) -> tuple[str, str]:
    """(kind, one line of evidence). Evidence first:

    - a FREED (or debug-filled) object among the crashing frame's arguments
      and locals, or the object being deallocated, makes it a double free,
      an over-decref or a use after free, whatever the fault address;
    - a pymalloc free list whose link is no block (``free_lists``) is a
      write through a stale pointer into a freed block;
    - a small fault address is a NULL dereference only when the crashing
      frame's objects are alive (a NULL loaded from a live object);
    - a freed object elsewhere (deeper frames, registers) comes after those.
    Never a free without freed evidence."""
    freed = [a for a in assessed if a.verdict == "FREED"]
    corrupt = [a for a in assessed if a.verdict == "CORRUPT"]
    if fatal is not None:
        if fatal.category == "negative-refcount":
            return "negative-refcount", f"{fatal.function} was called"
        if fatal.category == "glibc" and fatal.message and "double free" in fatal.message:
            return "double-free", f"glibc: {fatal.message}"
        if fatal.category == "debug-allocator" and fatal.message and "bad ID" in fatal.message and freed:
            return "double-free", f"the debug allocator found a freed block being freed again ({fatal.message})"
        return "fatal-error", f"{fatal.function}: {fatal.message or 'message not readable'}"
    if signal not in ("SIGSEGV", "SIGBUS"):
        if signal == "SIGABRT" and in_functions(native, re.compile(r"^malloc_printerr$")):
            return "double-free", "glibc's malloc found its free lists corrupt (malloc_printerr)"
        return "unknown", f"stopped by {signal}" if signal else "not stopped by a signal"
    general_protection = code == 128 or (code is None and fault == 0 and stop is not None
                                         and any(non_canonical(v) for v in stop.registers.values()))
    strong = [a for a in freed if a.candidate.role not in WEAK_ROLES and (a.candidate.crashing or a.candidate.deallocated)]
    if strong:
        return _freed_kind(strong[0], native)
    if free_lists:
        return "use-after-free", free_lists[0]
    crashing = [a for a in assessed if a.candidate.crashing]
    if fault is not None and fault < 4096 and not general_protection:
        alive = next((a for a in crashing if a.verdict == "ALIVE"), None)
        detail = f" of the live {alive.type} at {alive.candidate.address:#x}" if alive else ""
        return "null-dereference", f"read of address {fault:#x}: a NULL pointer{detail} was followed"
    if corrupt:
        bad = corrupt[0]
        return "corrupt-type", f"{bad.candidate.address:#x} ({bad.candidate.source}) has a bad ob_type"
    typed = [a for a in freed if a.candidate.role not in WEAK_ROLES]
    if typed:
        return _freed_kind(typed[0], native)
    # A register pointing at a freed block is often a stale leftover of a legitimate free:
    # evidence only when the block is 0xDD fill (the crash read through freed memory).
    filled = [a for a in freed if any("0xDD" in r for r in a.reasons) and a.candidate.role != PYTHON_LEFTOVER]
    if filled:
        return _freed_kind(filled[0], native)
    dd = dead_fill_registers(stop)
    if dd:
        return "use-after-free", f"{', '.join(dd)} hold 0xDD fill: a pointer read out of memory freed under PYTHONMALLOC=debug"
    if general_protection:
        return "unknown", "general protection fault (a non-canonical address): a wild pointer"
    if fault is None:
        return "unknown", ("invalid memory access at an unknown address (the debugger did not give the fault "
                           "address: lldb-16 does not read it from ELF cores)")
    return "unknown", f"invalid access at {fault:#x}"


def _freed_kind(dead: Assessed, native: Sequence[NativeFrame]) -> tuple[str, str]:
    what = f"the freed {dead.type}" if dead.type else "a freed object"
    free_fn = in_functions(native, FREE_FUNCTIONS)
    if free_fn:
        return "double-free", f"{free_fn} on {what} at {dead.candidate.address:#x}"
    dealloc = in_functions(native, DEALLOC_FUNCTIONS)
    if dead.candidate.deallocated or (dealloc and dead.candidate.role not in ("local", "python")):
        source = dead.candidate.source.replace(" (the crashing frame)", "")
        ran = dealloc or source
        return "over-decref", f"{ran} ran on {what} at {dead.candidate.address:#x} ({source}): deallocated again"
    if dead.candidate.role == "python":  # a Python frame's local or stack slot: a reference the interpreter holds
        return "use-after-free", f"{what} at {dead.candidate.address:#x} is still held ({dead.candidate.source})"
    return "use-after-free", f"{what} at {dead.candidate.address:#x} ({dead.candidate.source}) was used"
