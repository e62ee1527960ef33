"""The Target protocol: the only way the core reaches the debugged program.

Adapters (``pylife.dbg.gdb``, ``pylife.dbg.lldb``) implement it; unit tests use
``tests.unit.fakes.FakeTarget``. Everything here is plain data: adapters copy
what they need out of debugger handles, which die at the next resume.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .errors import UnreadableMemory


class TargetKind(enum.Enum):
    LIVE = "live"
    CORE = "core"


@dataclass(frozen=True)
class Module:
    """A loaded image (executable or shared library)."""

    path: str
    base: int  # load bias; 0 when unknown


@dataclass(frozen=True)
class NativeFrame:
    pc: int
    function: str | None
    file: str | None = None
    line: int | None = None
    module: str | None = None
    sp: int | None = None


@dataclass(frozen=True)
class ThreadInfo:
    tid: int  # OS thread id (LWP)
    name: str | None
    fs_base: int | None  # pthread_self() on x86-64 Linux, matches tstate->thread_id


@dataclass(frozen=True)
class WatchHit:
    """What the adapter knows of one watchpoint hit, handed to the callback.

    The adapter reads them from the stopping thread itself: inside a callback
    the debugger's selected thread may still be the previous stop's (lldb)."""

    tid: int | None  # OS thread id (LWP) of the writing thread
    pc: int | None  # its pc after the store


OnHit = Callable[[WatchHit], bool]


@dataclass(frozen=True)
class ObjectTypeIs:
    """A breakpoint condition the debugger evaluates itself, without running pylife:
    the object whose address is in ``register`` is not NULL and its ``ob_type``
    (at ``type_offset``) is one of ``types``. No types: never true."""

    register: str
    type_offset: int
    types: tuple[int, ...]

    MAX_TYPES = 4  # adapters render a fixed number of comparisons

    def c_expression(self) -> str:
        """The condition in C, as both gdb and lldb parse it."""
        if not self.types:
            return "0"
        field = f"*(unsigned long *)(${self.register} + {self.type_offset})"
        alternatives = " || ".join(f"{field} == {t:#x}" for t in self.types)
        return f"${self.register} != 0 && ({alternatives})"


@dataclass(frozen=True)
class BreakHit:
    """A break_at hit, captured in the callback: the stopped thread and the
    registers a hook at a function's entry (rdi: first argument) or return
    instruction (rax: return value) needs (x86-64 System V)."""

    tid: int | None
    pc: int
    sp: int
    rax: int
    rdi: int


OnBreak = Callable[[BreakHit], bool]


class Target(Protocol):
    """What the core may ask of a debugged program.

    Adapters and FakeTarget subclass it explicitly, so that the optional
    capabilities below (``read_granule``, ``section_of``, ``stop_reason``...) come
    with their documented defaults; the core calls them unconditionally.
    """

    debugger: str  # "gdb" or "lldb"

    @property
    def kind(self) -> TargetKind:
        """LIVE for a process, CORE for a core file (may change between commands)."""
        ...

    def read(self, address: int, size: int) -> bytes:
        """Return exactly ``size`` bytes or raise UnreadableMemory."""
        ...

    def symbol_address(self, name: str) -> int | None:
        """Address of a data or code symbol (dynamic or static), or None."""
        ...

    def modules(self) -> Sequence[Module]:
        """Loaded images, the executable first, each with its load base (link_map l_addr)."""
        ...

    def has_debug_info(self, function: str) -> bool:
        """DWARF describes ``function`` (in its image or a separate debug file), not only a symbol table."""
        ...

    def threads(self) -> Sequence[ThreadInfo]:
        """Every OS thread (fs_base may be None: see thread_pointer)."""
        ...

    def thread_pointer(self, tid: int) -> int | None:
        """The thread's fs_base (pthread_self on x86-64 Linux), or None."""
        ...

    def current_thread(self) -> int | None:
        """tid of the selected thread."""
        ...

    def native_frames(self, tid: int, limit: int, until: frozenset[str] = frozenset()) -> Sequence[NativeFrame]:
        """The thread's C frames, innermost first (inlined frames included).

        With ``until``, unwinding stops after the first frame whose function is
        in it; that frame carries ``sp`` so callers can reuse an older tail."""
        ...

    def watch_write(self, address: int, size: int, on_hit: OnHit) -> int:
        """Hardware write watchpoint (LIVE only). ``on_hit`` gets the hit's
        thread and pc and returns True to stop at the prompt, False to
        continue. Returns a handle for ``remove``."""
        ...

    def remove(self, handle: int) -> None:
        """Delete a watchpoint or a break_at breakpoint. Inside an ``on_hit`` the
        adapter only disables it there and deletes it at its next safe point."""
        ...

    def evaluate_address(self, expression: str, allow_call: bool = False) -> int:
        """Evaluate a debugger expression to an address; UserError if it fails.

        Calling a function would run code in the inferior: refused (UserError)
        unless ``allow_call`` (the user's ``--allow-call``)."""
        ...

    # ---- optional capabilities: these defaults hold when an adapter cannot tell ----

    @property
    def read_granule(self) -> int:
        """Memory's cache unit in bytes: what one round trip to the target costs.

        Default 4096 (a page). lldb-16 serves reads in 512-byte cache lines."""
        return 4096

    def section_of(self, address: int) -> tuple[str, str] | None:
        """(section name, image path) of a static address, e.g.
        (".data", "/.../libpython3.12.so.1.0"); None when the address is in no
        image's sections (heap, stack, mmap). Default: None (unknown)."""
        return None

    def other_hardware_watchpoints(self) -> int:
        """Debug registers held in the debugger by anyone but pylife: the user's own
        hardware watchpoints (``watch``) and hardware breakpoints (``hbreak``,
        ``breakpoint set -H``). Default 0 (cannot tell)."""
        return 0

    # Why the selected thread stopped, in three primitives; pylife.stopinfo.read_stop_info
    # assembles them (the register and frame loops) for both debuggers.

    def stop_reason(self) -> StopReason | None:
        """The selected thread and its signal, si_code, fault address, the debugger's
        own words. None without a stopped thread, and by default (cannot tell)."""
        return None

    def stop_register(self, name: str) -> int | None:
        """General-purpose register ``name`` (GENERAL_REGISTERS) of the selected
        thread's innermost frame, unsigned. None when unreadable, and by default."""
        return None

    def stop_frame(self, index: int) -> FrameArguments | None:
        """Frame ``index`` of the selected thread (0 innermost, inlined frames
        counted): function, pc, arguments and locals in scope. None past the
        outermost frame, and by default."""
        return None

    def break_at(self, symbol: str, offset: int, condition: ObjectTypeIs | None,
                 on_hit: OnBreak) -> int:
        """Breakpoint at exactly ``symbol`` + ``offset`` (no prologue skipped; LIVE
        only), in the symbol's out-of-line code. Pending while no loaded module
        defines ``symbol``: set when one loads. With ``condition`` the debugger
        evaluates it and calls ``on_hit`` only when it holds. ``on_hit`` returns
        True to stop at the prompt. Returns a handle for ``remove`` and
        ``set_condition``. May be called from inside an ``on_hit`` on lldb only:
        the core calls it at safe points (``Session.at_safe_point``)."""
        ...

    def set_condition(self, handle: int, condition: ObjectTypeIs | None) -> None:
        """Replace a break_at condition (None: always). Callable inside ``on_hit``."""
        ...

    def return_offsets(self, symbol: str) -> Sequence[int]:
        """Offsets from ``symbol`` of its return instructions, from the debugger's
        disassembler; empty while no loaded module defines it."""
        ...

    def function_at(self, pc: int) -> tuple[str, str | None] | None:
        """(function name, image path) of the code at ``pc``, from the symbol
        tables; None when no symbol covers it. Default: None (cannot tell)."""
        return None

    def program_arguments(self) -> tuple[str, ...] | None:
        """The debugged program and its arguments (argv), as the debugger launched it
        or as the core recorded it (ELF cores keep at most 80 characters of it).
        Default: None (unknown)."""
        return None

    # ---- process events (pylife.lifecycle calls these, in its one order) ----

    def safe_point(self) -> None:
        """Work the adapter had to put off until breakpoints may be created and
        deleted (deletions asked inside a callback, break_at hooks pending on a
        module now loaded). Default: nothing to do."""
        return None

    def forget_symbols(self) -> None:
        """Images were loaded or unloaded: drop caches keyed by pc or address
        (symbolized frames, section tables). Default: nothing cached."""
        return None

    def forget_process(self) -> None:
        """The process is gone (exited, killed, replaced): drop what the adapter
        keeps per process (callback registrations, thread tables), after pylife
        removed its handles. Default: nothing kept."""
        return None


class Memory:
    """Typed little-endian reads over a Target, with a small page cache.

    Target memory is hostile: every read may raise UnreadableMemory. The cache
    is only valid while the target is stopped; sessions make a new Memory per
    command (or per stop).
    """

    PAGE = 4096
    MAX_CACHED_PAGES = 4096
    # No decoder needs more in one read; larger sizes come from corrupt lengths
    # times user budgets, and gdb 13 aborts ("virtual memory exhausted") when
    # asked to read e.g. 512 GiB at once.
    MAX_READ = 16 << 20

    def __init__(self, target: Target) -> None:
        self.target = target
        # The adapter's cost unit (lldb-16: 512-byte cache lines, one remote round trip each).
        self.PAGE = target.read_granule
        self._pages: dict[int, bytes | None] = {}

    def _page(self, base: int) -> bytes | None:
        if base in self._pages:
            return self._pages[base]
        try:
            data: bytes | None = self.target.read(base, self.PAGE)
        except UnreadableMemory:
            data = None
        if len(self._pages) >= self.MAX_CACHED_PAGES:
            self._pages.clear()
        self._pages[base] = data
        return data

    def read(self, address: int, size: int) -> bytes:
        if size < 0 or address < 0 or address + size > 1 << 64:
            raise UnreadableMemory(address & ((1 << 64) - 1), max(size, 0), "bad range")
        if size > self.MAX_READ:
            raise UnreadableMemory(address, size, f"refusing to read more than {self.MAX_READ >> 20} MiB at once")
        if size == 0:
            return b""
        first = address - address % self.PAGE
        last = (address + size - 1) - (address + size - 1) % self.PAGE
        if last - first > 64 * self.PAGE:
            # Large reads bypass the cache.
            return self.target.read(address, size)
        chunks = []
        for base in range(first, last + 1, self.PAGE):
            page = self._page(base)
            if page is None:
                # The page as a whole is unreadable (e.g. it straddles the end of
                # a mapping); ask for exactly the bytes wanted.
                return self.target.read(address, size)
            chunks.append(page)
        blob = b"".join(chunks)
        start = address - first
        return blob[start : start + size]

    def u8(self, address: int) -> int:
        return self.read(address, 1)[0]

    def u16(self, address: int) -> int:
        return int(struct.unpack("<H", self.read(address, 2))[0])

    def u32(self, address: int) -> int:
        return int(struct.unpack("<I", self.read(address, 4))[0])

    def i32(self, address: int) -> int:
        return int(struct.unpack("<i", self.read(address, 4))[0])

    def u64(self, address: int) -> int:
        return int(struct.unpack("<Q", self.read(address, 8))[0])

    def i64(self, address: int) -> int:
        return int(struct.unpack("<q", self.read(address, 8))[0])

    def ptr(self, address: int) -> int:
        return self.u64(address)

    def f64(self, address: int) -> float:
        return float(struct.unpack("<d", self.read(address, 8))[0])

    def cstring(self, address: int, limit: int = 256) -> bytes:
        """Read a NUL-terminated string of at most ``limit`` bytes.

        Returns the bytes without the NUL; raises UnreadableMemory when the first
        byte cannot be read. A string with no NUL within ``limit`` is returned
        truncated to ``limit`` bytes (callers decide whether that is plausible).
        """
        out = bytearray()
        pos = address
        while len(out) < limit:
            step = min(64, limit - len(out), self.PAGE - pos % self.PAGE)
            try:
                chunk = self.read(pos, step)
            except UnreadableMemory:
                if not out:
                    raise
                break
            nul = chunk.find(b"\0")
            if nul >= 0:
                out += chunk[:nul]
                return bytes(out)
            out += chunk
            pos += step
        return bytes(out)


@dataclass(frozen=True)
class FrameArgument:
    name: str
    type: str  # the C type as the debugger spells it
    value: int | None  # its value as an unsigned integer (pointers, integers); None if unavailable


@dataclass(frozen=True)
class FrameArguments:
    function: str | None
    pc: int
    arguments: tuple[FrameArgument, ...]
    locals: tuple[FrameArgument, ...] = ()  # its local variables in scope at the pc (debug info)


@dataclass(frozen=True)
class StopReason:
    """What Target.stop_reason answers: StopInfo without the registers and frames."""

    tid: int | None
    signal: str | None
    code: int | None
    fault_address: int | None
    description: str | None = None
    instruction: str | None = None


@dataclass(frozen=True)
class StopInfo:
    tid: int | None
    signal: str | None  # "SIGSEGV", "SIGABRT", ...; None when the stop was not a signal
    code: int | None  # si_code, when the debugger knows it (128 = SI_KERNEL: e.g. a non-canonical address)
    fault_address: int | None  # si_addr of SIGSEGV/SIGBUS/SIGILL/SIGFPE, when known
    pc: int | None
    registers: dict[str, int]  # general-purpose registers of the innermost frame
    frames: tuple[FrameArguments, ...]  # the innermost frames (inlined ones included), innermost first
    description: str | None = None  # the debugger's own words for the stop
    instruction: str | None = None  # the faulting instruction, Intel syntax ("mov rax, qword ptr [rdi + 0x8]")


SIGNAL_NAMES = {4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL",
                11: "SIGSEGV", 13: "SIGPIPE", 15: "SIGTERM", 2: "SIGINT", 3: "SIGQUIT"}  # x86-64 Linux
FAULT_SIGNALS = frozenset({"SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE"})
GENERAL_REGISTERS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                     "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip")
