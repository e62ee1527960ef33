"""Python frames read from thread-state memory (cpython-internals.md §8).

The chain is walked from memory, never through debugger values, so it works
on cores and when the eval loop's locals are optimized out. Each frame is
read as one block; code objects are decoded once per command (CodeCache).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import PylifeError, UnreadableMemory
from ..target import Memory
from . import linetable
from .objects import Objects

MAX_PYTHON_FRAMES = 100_000

# Include/internal/pycore_frame.h `owner` values.
OWNED_BY_GENERATOR = 1


@dataclass(frozen=True)
class CodeInfo:
    address: int
    name: str
    qualname: str
    filename: str
    first_line: int
    line_table: bytes
    code_units_base: int  # address of the first code unit: co_code_adaptive (3.11+) or co_code's bytes; 0 if unknown
    first_traceable: int  # _co_firsttraceable (3.11+), else 0


@dataclass(frozen=True)
class PyFrame:
    """One Python frame: enough to print it and to merge it with C frames."""

    address: int
    code: CodeInfo | None
    line: int | None
    instr_index: int | None  # code unit index of the current/last instruction
    activation: int  # which C eval-loop activation runs it: 0 = the innermost
    error: str | None = None  # set for an unreadable frame, which ends the chain

    @property
    def function(self) -> str:
        return self.code.qualname if self.code else "<unknown>"


class CodeCache:
    def __init__(self, objects: Objects) -> None:
        self.objects = objects
        self._codes: dict[int, CodeInfo | None] = {}
        self._lines: dict[tuple[int, int | None], int | None] = {}

    def line(self, code: CodeInfo, instr_index: int | None) -> int | None:
        """line_for, memoized: deep recursions repeat the same (code, instruction)."""
        key = (code.address, instr_index)
        if key not in self._lines:
            self._lines[key] = line_for(self.objects.layout.key, code, instr_index)
        return self._lines[key]

    def get(self, address: int) -> CodeInfo | None:
        if address in self._codes:
            return self._codes[address]
        info: CodeInfo | None
        try:
            info = self._read(address)
        except PylifeError:
            info = None
        self._codes[address] = info
        return info

    def _read(self, address: int) -> CodeInfo | None:
        o = self.objects
        L = o.layout
        if not o.is_kind(address, "code"):
            return None

        def text(field: str) -> str:
            pointer = o.mem.ptr(address + L[field])
            return o.str_value(pointer, 400)[0] if o.is_kind(pointer, "str") else "?"

        name = text("PyCodeObject.co_name")
        qualname = text("PyCodeObject.co_qualname") if L.has("PyCodeObject.co_qualname") else name
        table_field = "PyCodeObject.co_linetable" if L.has("PyCodeObject.co_linetable") else "PyCodeObject.co_lnotab"
        table_ptr = o.mem.ptr(address + L[table_field])
        table = b""
        if o.is_kind(table_ptr, "bytes"):
            size = o.var_size(table_ptr)
            if 0 <= size <= 1 << 20:
                table = o.mem.read(table_ptr + L["PyBytesObject.ob_sval"], size)
        has_adaptive = L.has("PyCodeObject.co_code_adaptive")
        if has_adaptive:
            units = address + L["PyCodeObject.co_code_adaptive"]
        else:  # <= 3.10: bytecode lives in the co_code bytes object
            co_code = o.mem.ptr(address + L["PyCodeObject.co_code"])
            units = co_code + L["PyBytesObject.ob_sval"] if o.is_kind(co_code, "bytes") else 0
        return CodeInfo(
            address=address,
            name=name,
            qualname=qualname,
            filename=text("PyCodeObject.co_filename"),
            first_line=o.mem.i32(address + L["PyCodeObject.co_firstlineno"]),
            line_table=table,
            code_units_base=units,
            first_traceable=o.mem.i32(address + L["PyCodeObject._co_firsttraceable"]) if has_adaptive else 0,
        )


def line_for(layout_key: tuple[int, int], code: CodeInfo, instr_index: int | None) -> int | None:
    """Line of instruction ``instr_index`` (code units), by the version's table format."""
    if instr_index is None or instr_index < 0:
        return code.first_line
    if layout_key >= (3, 11):
        return linetable.line_from_locations_311(code.line_table, code.first_line, instr_index)
    if layout_key == (3, 10):
        return linetable.line_from_linetable_310(code.line_table, code.first_line, 2 * instr_index)
    return linetable.line_from_lnotab(code.line_table, code.first_line, 2 * instr_index)


def first_frame(mem: Memory, objects: Objects, tstate: int) -> int:
    """Address of the newest frame of a thread state, 0 if none."""
    L = objects.layout
    if L.has("PyThreadState.current_frame"):  # 3.13+
        return mem.ptr(tstate + L["PyThreadState.current_frame"])
    if L.has("PyThreadState.cframe"):  # 3.10 keeps frame too; 3.11/3.12 go through _PyCFrame
        if L.has("_PyCFrame.current_frame"):
            cframe = mem.ptr(tstate + L["PyThreadState.cframe"])
            return mem.ptr(cframe + L["_PyCFrame.current_frame"]) if cframe else 0
    return mem.ptr(tstate + L["PyThreadState.frame"])


def walk(mem: Memory, objects: Objects, codes: CodeCache, frame: int, limit: int = MAX_PYTHON_FRAMES) -> Iterator[PyFrame]:
    """Yield Python frames, newest first, from frame address ``frame``.

    Each frame says which C ``_PyEval_EvalFrameDefault`` activation runs it
    (cpython-internals.md §8.5): <= 3.10 one per frame; 3.11 an activation
    ends with the frame whose ``is_entry`` is set; 3.12+ activations are
    separated by their on-C-stack entry sentinel (owner CSTACK).
    """
    L = objects.layout
    seen: set[int] = set()
    old_style = not L.has("_PyInterpreterFrame.size")  # <= 3.10: PyFrameObject chain
    activation = 0
    count = 0
    while frame and count < limit:
        if frame in seen:
            yield PyFrame(frame, None, None, None, activation, f"frame chain loops back to {frame:#x}")
            return
        seen.add(frame)
        try:
            if old_style:
                block = mem.read(frame, L["PyFrameObject.f_lasti"] + 4)
                code_ptr = struct.unpack_from("<Q", block, L["PyFrameObject.f_code"])[0]
                older = struct.unpack_from("<Q", block, L["PyFrameObject.f_back"])[0]
                lasti = struct.unpack_from("<i", block, L["PyFrameObject.f_lasti"])[0]
            else:
                block = mem.read(frame, L["_PyInterpreterFrame.size"])
                code_ptr = struct.unpack_from("<Q", block, L["_PyInterpreterFrame.code"])[0]
                older = struct.unpack_from("<Q", block, L["_PyInterpreterFrame.previous"])[0]
                instr = struct.unpack_from("<Q", block, L["_PyInterpreterFrame.instr"])[0]
                owner = block[L["_PyInterpreterFrame.owner"]]
        except UnreadableMemory as exc:
            yield PyFrame(frame, None, None, None, activation, f"unreadable frame at {frame:#x}: {exc}")
            return
        current = frame
        frame = older
        if old_style:
            code = codes.get(code_ptr)
            if code is None:
                yield PyFrame(current, None, None, None, activation, f"frame at {current:#x} has no code object")
                return
            # 3.8/3.9 f_lasti is a byte offset, 3.10 a code-unit index; -1: not started.
            index = lasti if L.key >= (3, 10) or lasti < 0 else lasti // 2
            count += 1
            yield PyFrame(current, code, codes.line(code, index), index, activation)
            activation += 1
            continue
        if owner == L.entry_frame_owner() and not L.has("_PyInterpreterFrame.is_entry"):
            activation += 1  # 3.12+: entry sentinel of the activation we just finished
            continue
        is_entry = L.has("_PyInterpreterFrame.is_entry") and bool(block[L["_PyInterpreterFrame.is_entry"]])
        code = codes.get(code_ptr & ~3)
        if code is None:
            if L.frames_may_run_non_code():
                continue  # f_executable may be None or another object for shim frames
            yield PyFrame(current, None, None, None, activation, f"frame at {current:#x} has no code object")
            return
        index = (instr - code.code_units_base) // 2 if instr and code.code_units_base else None
        complete = owner == OWNED_BY_GENERATOR or index is None or index >= code.first_traceable
        if complete:  # skip incomplete frames (pycore_frame.h _PyFrame_IsIncomplete)
            count += 1
            yield PyFrame(current, code, codes.line(code, index), index, activation)
        if is_entry:  # 3.11: the activation ends with its entry frame
            activation += 1


def opcode_name(mem: Memory, objects: Objects, frame: PyFrame) -> str | None:
    """Name of the instruction a frame is executing (3.11+: specialized names included)."""
    from .opcodes_generated import OPNAMES

    code = frame.code
    if code is None or frame.instr_index is None or frame.instr_index < 0 or not code.code_units_base:
        return None
    try:  # one direct byte: the page cache would read 4 KiB for it
        opcode = mem.target.read(code.code_units_base + 2 * frame.instr_index, 1)[0]
    except (UnreadableMemory, IndexError):
        return None
    return OPNAMES.get(objects.layout.key, {}).get(opcode)
