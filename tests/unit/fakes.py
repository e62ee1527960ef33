"""A fake Target over a sparse memory image, for tests that need no debugger.

Memory is a set of mapped regions (base -> bytearray). A read must be covered
byte for byte by mapped regions (adjacent regions join); anything else raises
``UnreadableMemory``, exactly as a debugger does for an unmapped page.
"""

from __future__ import annotations

import bisect
import copy
import re
import struct
from collections.abc import Sequence

from pylife.errors import NotLive, UnreadableMemory, UserError
from pylife.target import (
    BreakHit,
    FrameArguments,
    Module,
    NativeFrame,
    ObjectTypeIs,
    OnBreak,
    OnHit,
    StopInfo,
    StopReason,
    Target,
    TargetKind,
    ThreadInfo,
    WatchHit,
)

PAGE = 4096
ADDRESS_LIMIT = 1 << 64
_INTEGER = re.compile(r"^(0[xX][0-9a-fA-F]+|[0-9]+)$")


class FakeTarget(Target):
    """Implements :class:`pylife.target.Target` over an in-memory image.

    The optional capabilities answer from plain fields: ``sections`` for
    ``section_of``, ``stop`` for ``stop_reason``/``stop_register``/``stop_frame``, ``granule`` for ``read_granule``.
    """

    debugger = "fake"

    def __init__(self, kind: TargetKind = TargetKind.LIVE) -> None:
        self._kind = kind
        self.sections: list[tuple[int, int, str, str]] = []  # (start, end, section name, image path)
        self.stop: StopInfo | None = None
        self.granule = 4096
        self.last_allow_call: bool | None = None  # what the last evaluate_address was allowed
        self.user_watchpoints = 0  # hardware watchpoints "set by hand" in the fake debugger
        self.symbols: dict[str, int] = {}
        self.debug_info: set[str] = set()  # functions DWARF describes
        self.module_list: list[Module] = []
        self.thread_list: list[ThreadInfo] = []
        self.selected_thread: int | None = None
        self.frames: dict[int, list[NativeFrame]] = {}  # tid -> C frames, innermost first
        self.watchpoints: dict[int, tuple[int, int, OnHit]] = {}  # handle -> (address, size, on_hit)
        # break_at handle -> [symbol, offset, condition, on_hit]; returns: symbol -> offsets of its `ret`s
        self.breakpoints: dict[int, list[object]] = {}
        self.returns: dict[str, list[int]] = {}
        self.condition_checks = 0  # conditions "the debugger" evaluated (without calling pylife)
        self._next_handle = 1
        self._bases: list[int] = []  # sorted region starts
        self._regions: dict[int, bytearray] = {}
        self._last: tuple[int, bytearray] | None = None  # the region found last (most accesses repeat it)
        self.read_calls = 0
        self.bytes_read = 0
        self.largest_read = 0
        self.unwind_calls = 0
        self.argv: tuple[str, ...] | None = None  # what program_arguments() answers
        self.functions: dict[int, tuple[str, str | None]] = {}  # pc -> what function_at() answers

    def clone(self) -> FakeTarget:
        """An independent copy of the image, symbols and modules."""
        twin = copy.copy(self)
        twin._bases = list(self._bases)
        twin._regions = {base: bytearray(region) for base, region in self._regions.items()}
        twin._last = None
        twin.symbols = dict(self.symbols)
        twin.debug_info = set(self.debug_info)
        twin.module_list = list(self.module_list)
        twin.thread_list = list(self.thread_list)
        twin.frames = {tid: list(frames) for tid, frames in self.frames.items()}
        twin.watchpoints = dict(self.watchpoints)
        twin.sections = list(self.sections)
        twin.breakpoints = {h: list(b) for h, b in self.breakpoints.items()}
        twin.returns = {k: list(v) for k, v in self.returns.items()}
        twin.functions = dict(self.functions)
        return twin

    # ---- the image -----------------------------------------------------------

    def map(self, base: int, size: int, fill: int = 0) -> None:
        """Map ``size`` bytes at ``base`` (must not overlap an existing region)."""
        if size <= 0 or base < 0 or base + size > ADDRESS_LIMIT:
            raise ValueError(f"bad region {base:#x}+{size:#x}")
        index = bisect.bisect_right(self._bases, base)
        if index > 0:
            previous = self._bases[index - 1]
            if previous + len(self._regions[previous]) > base:
                raise ValueError(f"region {base:#x} overlaps {previous:#x}")
        if index < len(self._bases) and self._bases[index] < base + size:
            raise ValueError(f"region {base:#x}+{size:#x} overlaps {self._bases[index]:#x}")
        self._bases.insert(index, base)
        self._regions[base] = bytearray([fill]) * size

    def unmap(self, base: int) -> None:
        self._last = None
        del self._regions[base]
        self._bases.remove(base)

    def is_mapped(self, address: int) -> bool:
        return self._locate(address) is not None

    def _locate(self, address: int) -> tuple[int, bytearray] | None:
        last = self._last
        if last is not None and last[0] <= address < last[0] + len(last[1]):
            return last
        index = bisect.bisect_right(self._bases, address) - 1
        if index < 0:
            return None
        base = self._bases[index]
        region = self._regions[base]
        if address < base + len(region):
            self._last = (base, region)
            return self._last
        return None

    def write(self, address: int, data: bytes) -> None:
        """Write into mapped memory (a test bug, not target behaviour, if unmapped)."""
        found = self._locate(address)
        if found is not None and address + len(data) <= found[0] + len(found[1]):
            start = address - found[0]
            found[1][start : start + len(data)] = data
            return
        pos = 0
        while pos < len(data):
            found = self._locate(address + pos)
            if found is None:
                raise ValueError(f"write to unmapped {address + pos:#x}")
            base, region = found
            start = address + pos - base
            step = min(len(data) - pos, len(region) - start)
            region[start : start + step] = data[pos : pos + step]
            pos += step

    def write_u8(self, address: int, value: int) -> None:
        self.write(address, struct.pack("<B", value & 0xFF))

    def write_u16(self, address: int, value: int) -> None:
        self.write(address, struct.pack("<H", value & 0xFFFF))

    def write_u32(self, address: int, value: int) -> None:
        self.write(address, struct.pack("<I", value & 0xFFFFFFFF))

    def write_i32(self, address: int, value: int) -> None:
        self.write(address, struct.pack("<i", value))

    def write_u64(self, address: int, value: int) -> None:
        self.write(address, struct.pack("<Q", value & (ADDRESS_LIMIT - 1)))

    def write_i64(self, address: int, value: int) -> None:
        self.write(address, struct.pack("<q", value))

    def write_f64(self, address: int, value: float) -> None:
        self.write(address, struct.pack("<d", value))

    def peek_u64(self, address: int) -> int:
        return int(struct.unpack("<Q", self.read(address, 8))[0])

    # ---- the Target protocol ---------------------------------------------------

    @property
    def kind(self) -> TargetKind:
        return self._kind

    @kind.setter
    def kind(self, kind: TargetKind) -> None:
        self._kind = kind

    @property
    def read_granule(self) -> int:
        return self.granule

    def section_of(self, address: int) -> tuple[str, str] | None:
        for start, end, name, path in self.sections:
            if start <= address < end:
                return name, path
        return None

    def stop_reason(self) -> StopReason | None:
        stop = self.stop
        if stop is None:
            return None
        return StopReason(stop.tid, stop.signal, stop.code, stop.fault_address, stop.description, stop.instruction)

    def stop_register(self, name: str) -> int | None:
        if self.stop is None:
            return None
        if name == "rip" and "rip" not in self.stop.registers:
            return self.stop.pc
        return self.stop.registers.get(name)

    def stop_frame(self, index: int) -> FrameArguments | None:
        frames = self.stop.frames if self.stop is not None else ()
        return frames[index] if 0 <= index < len(frames) else None

    def other_hardware_watchpoints(self) -> int:
        return self.user_watchpoints

    def read(self, address: int, size: int) -> bytes:
        self.read_calls += 1
        if size < 0 or address < 0 or address + size > ADDRESS_LIMIT:
            raise UnreadableMemory(address % ADDRESS_LIMIT, max(size, 0), "bad range")
        self.largest_read = max(self.largest_read, size)
        found = self._locate(address)
        if found is not None and address + size <= found[0] + len(found[1]):
            self.bytes_read += size
            start = address - found[0]
            return bytes(found[1][start : start + size])
        out = bytearray()
        pos = address
        end = address + size
        while pos < end:
            found = self._locate(pos)
            if found is None:
                raise UnreadableMemory(address, size, f"{pos:#x} is not mapped")
            base, region = found
            start = pos - base
            step = min(end - pos, len(region) - start)
            out += region[start : start + step]
            pos += step
        self.bytes_read += size
        return bytes(out)

    def symbol_address(self, name: str) -> int | None:
        return self.symbols.get(name)

    def modules(self) -> Sequence[Module]:
        return list(self.module_list)

    def has_debug_info(self, function: str) -> bool:
        return function in self.debug_info

    def threads(self) -> Sequence[ThreadInfo]:
        return list(self.thread_list)

    def thread_pointer(self, tid: int) -> int | None:
        for thread in self.thread_list:
            if thread.tid == tid:
                return thread.fs_base
        return None

    def current_thread(self) -> int | None:
        if self.selected_thread is not None:
            return self.selected_thread
        return self.thread_list[0].tid if self.thread_list else None

    def native_frames(self, tid: int, limit: int, until: frozenset[str] = frozenset()) -> Sequence[NativeFrame]:
        """Like the adapters: with ``until``, stop after the first frame whose function is in it."""
        self.unwind_calls += 1
        frames = list(self.frames.get(tid, []))[: max(0, limit)]
        for index, frame in enumerate(frames):
            if frame.function in until:
                return frames[: index + 1]
        return frames

    def watch_write(self, address: int, size: int, on_hit: OnHit) -> int:
        if self.kind is not TargetKind.LIVE:
            raise NotLive("watchpoints need a running process, not a core file")
        handle = self._next_handle
        self._next_handle += 1
        self.watchpoints[handle] = (address, size, on_hit)
        return handle

    def remove(self, handle: int) -> None:
        self.watchpoints.pop(handle, None)
        self.breakpoints.pop(handle, None)

    def fire(self, handle: int, tid: int | None = None, pc: int | None = None) -> bool:
        """Simulate a hit of watchpoint ``handle`` in thread ``tid`` (default: the
        current one): returns what on_hit asked (True = stop)."""
        tid = tid if tid is not None else self.current_thread()
        frames = self.frames.get(tid, []) if tid is not None else []
        if pc is None and frames:
            pc = frames[0].pc
        return self.watchpoints[handle][2](WatchHit(tid, pc))

    def hit(self, handle: int, value: int, frames: Sequence[NativeFrame] = (), tid: int | None = None) -> bool:
        """Simulate a write that triggers watchpoint ``handle``: store ``value`` (8 bytes,
        signed) at the watched address, make ``frames`` the C stack of thread ``tid``
        (default: the current thread, or 1), then call the registered on_hit with
        that thread (not selected: the recorder must use the hit's thread)."""
        address, _size, _on_hit = self.watchpoints[handle]
        self.write_i64(address, value)
        tid = tid if tid is not None else (self.current_thread() or 1)
        self.frames[tid] = list(frames)  # the selection stays: a debugger's may lag behind the hit
        return self.fire(handle, tid)

    def break_at(self, symbol: str, offset: int, condition: ObjectTypeIs | None,
                 on_hit: OnBreak) -> int:
        if self.kind is not TargetKind.LIVE:
            raise NotLive("breakpoints need a running process, not a core file")
        handle = 1_000_000 + self._next_handle
        self._next_handle += 1
        self.breakpoints[handle] = [symbol, offset, condition, on_hit]
        return handle

    def set_condition(self, handle: int, condition: ObjectTypeIs | None) -> None:
        if handle in self.breakpoints:
            self.breakpoints[handle][2] = condition

    def return_offsets(self, symbol: str) -> Sequence[int]:
        return list(self.returns.get(symbol, [])) if symbol in self.symbols else []

    def break_handles(self, symbol: str) -> list[int]:
        return [h for h, b in self.breakpoints.items() if b[0] == symbol]

    def reach(self, symbol: str, offset: int = 0, *, rax: int = 0, rdi: int = 0, tid: int | None = None,
              frames: Sequence[NativeFrame] = ()) -> list[bool]:
        """Simulate the program reaching ``symbol`` + ``offset`` with these registers:
        evaluate each breakpoint's condition as a debugger does (reading memory),
        call on_hit where it holds; returns what each on_hit asked."""
        tid = tid if tid is not None else (self.current_thread() or 1)
        self.selected_thread = tid
        if frames:
            self.frames[tid] = list(frames)
        results = []
        for symbol_, offset_, condition, on_hit in list(self.breakpoints.values()):
            if symbol_ != symbol or offset_ != offset:
                continue
            if isinstance(condition, ObjectTypeIs):
                self.condition_checks += 1
                value = {"rax": rax, "rdi": rdi}[condition.register]
                if value == 0 or not condition.types:
                    continue
                try:
                    if self.peek_u64(value + condition.type_offset) not in condition.types:
                        continue
                except UnreadableMemory:
                    continue
            address = (self.symbols.get(symbol) or 0) + offset
            results.append(on_hit(BreakHit(tid, address, 0x7FFD_0000_0000, rax, rdi)))  # type: ignore[operator]
        return results

    def program_arguments(self) -> tuple[str, ...] | None:
        return self.argv

    def function_at(self, pc: int) -> tuple[str, str | None] | None:
        return self.functions.get(pc)

    def evaluate_address(self, expression: str, allow_call: bool = False) -> int:
        self.last_allow_call = allow_call
        text = expression.strip()
        if _INTEGER.match(text):
            return int(text, 0)
        name = text[1:] if text.startswith("&") else text
        if name in self.symbols:
            return self.symbols[name]
        raise UserError(f"cannot evaluate '{expression}': no symbol \"{name}\" in the fake target")
