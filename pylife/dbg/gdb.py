"""GDB adapter: GdbTarget, and one Session per inferior (session_for).

Only translation lives here: gdb API <-> Target. The breakpoints pylife sets
are in gdb_breakpoints, gdb's events and the `pylife` command in gdb_events.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import gdb

from .. import linkmap
from ..batch.report import command_words
from ..errors import UnreadableMemory, UserError
from ..frame_symbols import FrameSymbols, Symbol
from ..glibc import ThreadPointers
from ..session import Session
from ..target import (
    FAULT_SIGNALS,
    SIGNAL_NAMES,
    FrameArgument,
    FrameArguments,
    Memory,
    Module,
    NativeFrame,
    ObjectTypeIs,
    OnBreak,
    OnHit,
    StopReason,
    Target,
    TargetKind,
    ThreadInfo,
)
from .gdb_breakpoints import C_TYPE_OF_SIZE, HOOK_BASE, Hook, RefcountWatchpoint, callbacks, hook_numbers, hooks_by_number, runs

_INFO_SYMBOL = re.compile(r"^.*? in section (\S+)(?: of (.+))?$")
_MASK64 = (1 << 64) - 1
# `disassemble` lines of return instructions: "   0x00007ffff7b0a4d6 <+54>:\tret"
_RETURN_LINE = re.compile(r"^\s*(?:=>\s*)?0x[0-9a-f]+ <\+(\d+)>:\s+(?:(?:repz|rep|bnd|notrack)\s+)*retq?\b", re.M)


class GdbTarget(Target):
    debugger = "gdb"

    def __init__(self, inferior: gdb.Inferior) -> None:
        self.inferior = inferior
        self.symbols = FrameSymbols(lambda: {m.path: m.base for m in self.modules()})
        self._hooks: dict[int, Hook] = {}  # break_at handle -> its hook (pending while .breakpoint is None)
        self._doomed: list[gdb.Breakpoint] = []  # disabled inside a stop(): deleted at the next safe point
        self.pthreads = ThreadPointers(self, lambda: (self.inferior.pid, runs.count))

    @property
    def kind(self) -> TargetKind:
        connection = getattr(self.inferior, "connection", None)
        if connection is not None and getattr(connection, "type", "") == "core":
            return TargetKind.CORE
        return TargetKind.LIVE

    def read(self, address: int, size: int) -> bytes:
        try:
            return bytes(self.inferior.read_memory(address, size))
        except (gdb.MemoryError, gdb.error, OverflowError, ValueError) as exc:
            raise UnreadableMemory(address, size, str(exc).split("\n")[0]) from None

    def symbol_address(self, name: str) -> int | None:
        # Full symbols (DWARF) are found fast; minimal symbols (stripped or
        # no debug info) only through the expression evaluator.
        try:
            symbol = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
            if symbol is not None and symbol.addr_class != gdb.SYMBOL_LOC_OPTIMIZED_OUT:
                value = symbol.value()
                if value.address is not None:
                    return int(value.address.cast(gdb.lookup_type("unsigned long"))) or None
        except gdb.error:
            pass
        try:
            value = gdb.parse_and_eval(f"(unsigned long)&'{name}'")
        except gdb.error:
            return None
        return int(value) or None

    def modules(self) -> Sequence[Module]:
        # gdb's Python API has no load base: the dynamic linker's list has it.
        bases = linkmap.load_bases(self, Memory(self))
        real = {os.path.realpath(name): base for name, base in bases.items() if name}
        result: list[Module] = []
        main = _main_file()
        if main:
            result.append(Module(main, bases.get(linkmap.EXECUTABLE, 0)))
        for objfile in gdb.objfiles():
            name = objfile.filename if objfile.is_valid() else None
            if name and name != main:
                result.append(Module(name, bases.get(name, real.get(os.path.realpath(name), 0))))
        return result

    def has_debug_info(self, function: str) -> bool:
        try:
            symbol = gdb.lookup_global_symbol(function)  # full symbols come from DWARF only
        except gdb.error:
            return False
        return symbol is not None and symbol.is_function

    def _thread(self, tid: int) -> gdb.InferiorThread | None:
        for thread in self.inferior.threads():
            if (thread.ptid[1] or thread.ptid[0]) == tid:
                return thread
        return None

    def threads(self) -> Sequence[ThreadInfo]:
        threads = [ThreadInfo(t.ptid[1] or t.ptid[0], t.name, None) for t in self.inferior.threads()]
        return sorted(threads, key=lambda t: t.tid)

    def thread_pointer(self, tid: int) -> int | None:
        thread = self._thread(tid)
        if thread is None:
            return None
        register: int | None = None
        with _KeepSelection():
            try:
                thread.switch()
                register = int(gdb.parse_and_eval("$fs_base")) & ((1 << 64) - 1)
            except gdb.error:
                pass
        return self.pthreads.get(tid, register)

    def current_thread(self) -> int | None:
        thread = gdb.selected_thread()
        return (thread.ptid[1] or thread.ptid[0]) if thread is not None else None

    def native_frames(self, tid: int, limit: int, until: frozenset[str] = frozenset()) -> Sequence[NativeFrame]:
        selected = gdb.selected_thread()
        if selected is not None and (selected.ptid[1] or selected.ptid[0]) == tid:
            return self._unwind(limit, until)  # the hot path: a watch hit in this thread
        thread = self._thread(tid)
        if thread is None:
            return []
        with _KeepSelection():
            thread.switch()
            return self._unwind(limit, until)

    def _unwind(self, limit: int, until: frozenset[str]) -> list[NativeFrame]:
        frames: list[NativeFrame] = []
        try:
            frame: gdb.Frame | None = gdb.newest_frame()
        except gdb.error:
            return frames
        lookup = self.symbols.unwind()
        while frame is not None and len(frames) < limit:
            pc = frame.pc()
            current = frame
            symbol = lookup(pc, lambda: _symbolize(current, pc))  # noqa: B023 - called at once
            name, file, line, module = symbol
            if name in until:
                sp = int(frame.read_register("rsp")) & ((1 << 64) - 1)
                frames.append(NativeFrame(pc, name, file, line, module, sp))
                break
            frames.append(NativeFrame(pc, name, file, line, module))
            try:
                frame = frame.older()
            except gdb.error:
                break
        return frames

    def watch_write(self, address: int, size: int, on_hit: OnHit) -> int:
        spec = f"*({C_TYPE_OF_SIZE[size]} *) {address:#x}"
        try:
            watchpoint = RefcountWatchpoint(spec, on_hit, lambda: session_for(self.inferior))
        except (gdb.error, RuntimeError) as exc:
            raise UserError(f"cannot set a hardware watchpoint on {address:#x}: {exc}") from None
        return int(watchpoint.number)

    def remove(self, handle: int) -> None:
        hook = self._hooks.pop(handle, None)
        if hook is not None:
            hooks_by_number.pop(handle - HOOK_BASE, None)
            if hook.breakpoint is not None:
                self._delete(hook.breakpoint)
            return
        for breakpoint in gdb.breakpoints():
            if breakpoint.number == handle and breakpoint.is_valid():
                self._delete(breakpoint)

    def _delete(self, breakpoint: gdb.Breakpoint) -> None:
        # gdb must not delete a breakpoint inside a stop() method: disabling it
        # frees its hardware slot at once, the deletion waits for a safe point.
        if callbacks.depth:
            breakpoint.enabled = False
            self._doomed.append(breakpoint)
        else:
            breakpoint.delete()

    def forget_symbols(self) -> None:
        self.symbols.clear()  # libraries moved: pcs mean something else

    def forget_process(self) -> None:
        self.pthreads.forget()

    def safe_point(self) -> None:
        """Delete what stop() methods disabled; set pending hooks whose symbol is now loaded."""
        while self._doomed:
            breakpoint = self._doomed.pop()
            if breakpoint.is_valid():
                breakpoint.delete()
        if self.inferior.pid == 0:
            return
        for hook in self._hooks.values():
            if hook.breakpoint is None:
                address = self.symbol_address(hook.symbol)
                if address is not None:
                    hook.place(address)

    def break_at(self, symbol: str, offset: int, condition: ObjectTypeIs | None,
                 on_hit: OnBreak) -> int:
        handle = HOOK_BASE + next(hook_numbers)
        hook = self._hooks[handle] = Hook(handle, symbol, offset, condition, on_hit)
        # Before `run` a symbol of a static executable resolves to its unrelocated
        # address: hooks are placed once there is a process (safe_point, new objfiles).
        address = self.symbol_address(symbol) if self.inferior.pid != 0 else None
        if address is not None:
            try:
                hook.place(address)
            except (gdb.error, RuntimeError) as exc:
                del self._hooks[handle]
                raise UserError(f"cannot set a breakpoint at {symbol}+{offset}: {exc}") from None
        return handle

    def set_condition(self, handle: int, condition: ObjectTypeIs | None) -> None:
        hook = self._hooks.get(handle)
        if hook is not None:
            hook.condition = condition
            hook.set_types(condition)

    def return_offsets(self, symbol: str) -> Sequence[int]:
        address = self.symbol_address(symbol) if self.inferior.pid != 0 else None
        if address is None:
            return []
        try:
            text = gdb.execute(f"disassemble {address:#x}", to_string=True)
        except gdb.error:
            return []
        return [int(m.group(1)) for m in _RETURN_LINE.finditer(text)]

    def evaluate_address(self, expression: str, allow_call: bool = False) -> int:
        try:
            with _MayCallFunctions(allow_call):
                value = gdb.parse_and_eval(expression)
            code = value.type.strip_typedefs().code
            if code in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION) and value.address is not None:
                value = value.address
            return int(value.cast(gdb.lookup_type("unsigned long"))) & ((1 << 64) - 1)
        except gdb.error as exc:
            reason = str(exc)
            if "may-call-functions is off" in reason:
                reason = "it calls a function in the program (pylife runs no code in it; --allow-call permits it)"
            raise UserError(f"cannot evaluate '{expression}': {reason}") from None

    # -- optional Target capabilities (defaults in pylife.target.Target) ------

    def other_hardware_watchpoints(self) -> int:
        # pylife's watchpoints are internal (negative numbers); a plain
        # BP_WATCHPOINT is software (no debug register); `hbreak` takes one.
        kinds = (gdb.BP_HARDWARE_WATCHPOINT, gdb.BP_READ_WATCHPOINT, gdb.BP_ACCESS_WATCHPOINT,
                 gdb.BP_HARDWARE_BREAKPOINT)
        return sum(1 for b in gdb.breakpoints() if b.is_valid() and b.number > 0 and b.enabled and b.type in kinds)

    def function_at(self, pc: int) -> tuple[str, str | None] | None:
        name = None
        try:
            block = gdb.block_for_pc(pc)
            while block is not None and block.function is None:
                block = block.superblock
            if block is not None and block.function is not None:
                name = block.function.name
        except RuntimeError:
            pass
        if name is None:  # no DWARF: the minimal symbol, "NAME in section .text of FILE"
            try:
                text = gdb.execute(f"info symbol {pc:#x}", to_string=True)
            except gdb.error:
                return None
            if " in section " not in text:
                return None
            name = text.split(" in section ")[0].split(" + ")[0].strip()
        return (str(name), _module_of(pc)) if name else None

    def program_arguments(self) -> tuple[str, ...] | None:
        program = _main_file()
        if self.kind is TargetKind.CORE:
            # The core's NT_PRPSINFO command line (at most 80 characters), as `info proc` shows it.
            try:
                text = gdb.execute("info proc", to_string=True)
            except gdb.error:
                text = ""
            match = re.search(r"^exe = '(.*)'$", text, re.MULTILINE)
            if match:
                return tuple(command_words(match.group(1)))
            return (program,) if program else None
        if not program:
            return None
        try:
            # gdb 13's Python API does not expose the arguments (gdb.parameter("args") is empty).
            shown = gdb.execute("show args", to_string=True)
        except gdb.error:
            shown = ""
        match = re.search(r'"(.*)"\.?\s*$', shown, re.DOTALL)
        return (program, *command_words(match.group(1) if match else ""))

    def section_of(self, address: int) -> tuple[str, str] | None:
        """(section, image) from `info symbol`: works live and on cores, no process access."""
        try:
            text = gdb.execute(f"info symbol {address:#x}", to_string=True).strip()
        except gdb.error:
            return None
        match = _INFO_SYMBOL.match(text.splitlines()[0] if text else "")
        if match is None:
            return None
        return match.group(1), (match.group(2) or _main_file() or "").strip()

    def stop_reason(self) -> StopReason | None:
        thread = gdb.selected_thread()
        if thread is None:
            return None
        signal = code = fault = None
        try:
            siginfo = gdb.parse_and_eval("$_siginfo")
            number = int(siginfo["si_signo"])
            signal = SIGNAL_NAMES.get(number, f"signal {number}") if number else None
            code = int(siginfo["si_code"])
            if signal in FAULT_SIGNALS:
                fault = int(siginfo["_sifields"]["_sigfault"]["si_addr"]) & _MASK64
        except (gdb.error, RuntimeError, ValueError):
            pass
        return StopReason(thread.ptid[1] or thread.ptid[0], signal, code, fault)

    def stop_register(self, name: str) -> int | None:
        try:
            return int(gdb.newest_frame().read_register(name)) & _MASK64
        except (gdb.error, ValueError):
            return None

    def stop_frame(self, index: int) -> FrameArguments | None:
        try:
            frame: gdb.Frame | None = gdb.newest_frame()
            for _ in range(index):
                frame = frame.older() if frame is not None else None
            if frame is None:
                return None
            function, pc = frame.name(), frame.pc()
        except gdb.error:
            return None
        return FrameArguments(function, pc, _frame_arguments(frame), _frame_arguments(frame, local=True))


def _frame_arguments(frame: gdb.Frame, local: bool = False) -> tuple[FrameArgument, ...]:
    """The frame's named arguments, or (``local``) its local variables in scope at the pc
    (DWARF), as integers when they are pointers or integers."""
    try:
        block: gdb.Block | None = frame.block()
    except (RuntimeError, gdb.error):
        return ()
    blocks = []
    while block is not None and block.function is None:
        blocks.append(block)  # the inner lexical blocks hold locals too
        block = block.superblock
    if block is None:
        return ()
    blocks.append(block)
    result: list[FrameArgument] = []
    for scope in blocks if local else [block]:
        for symbol in scope:
            if symbol.is_argument == local or (local and not symbol.is_variable):
                continue
            value: int | None = None
            type_name = "?"
            try:
                raw = symbol.value(frame)
                type_name = str(raw.type)
                code = raw.type.strip_typedefs().code
                if not raw.is_optimized_out and code in (gdb.TYPE_CODE_PTR, gdb.TYPE_CODE_INT):
                    value = int(raw) & _MASK64
            except (gdb.error, RuntimeError, ValueError):
                value = None
            result.append(FrameArgument(symbol.name, type_name, value))
    return tuple(result)


class _MayCallFunctions:
    """gdb's `set may-call-functions` for one evaluation, restored afterwards."""

    def __init__(self, allow: bool) -> None:
        self.allow = allow
        self.previous: bool | None = None

    def __enter__(self) -> None:
        try:
            self.previous = bool(gdb.parameter("may-call-functions"))
            gdb.execute(f"set may-call-functions {'on' if self.allow else 'off'}", to_string=True)
        except gdb.error:
            self.previous = None

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            gdb.execute(f"set may-call-functions {'on' if self.previous else 'off'}", to_string=True)


class _KeepSelection:
    """Restore the selected thread and frame after walking other threads."""

    def __enter__(self) -> None:
        self.thread = gdb.selected_thread()
        try:
            self.frame: gdb.Frame | None = gdb.selected_frame()
        except gdb.error:
            self.frame = None

    def __exit__(self, *exc: object) -> None:
        try:
            if self.thread is not None and self.thread.is_valid():
                self.thread.switch()
            if self.frame is not None and self.frame.is_valid():
                self.frame.select()
        except gdb.error:
            pass


def _symbolize(frame: gdb.Frame, pc: int) -> Symbol:
    sal = frame.find_sal()
    symtab = sal.symtab
    return frame.name(), symtab.filename if symtab is not None else None, sal.line or None, _module_of(pc)


def _module_of(pc: int) -> str | None:
    name = gdb.solib_name(pc)
    if name:
        return str(name)
    return _main_file()


def _main_file() -> str | None:
    progspace = gdb.current_progspace()
    return progspace.filename if progspace is not None else None


_sessions: dict[int, Session] = {}


def sessions() -> list[Session]:
    """Every inferior's session, for events that concern them all."""
    return list(_sessions.values())


def session_for(inferior: gdb.Inferior) -> Session:
    session = _sessions.get(inferior.num)
    if session is None or not isinstance(session.target, GdbTarget) or session.target.inferior is not inferior:
        session = Session(GdbTarget(inferior))
        _sessions[inferior.num] = session
    return session
