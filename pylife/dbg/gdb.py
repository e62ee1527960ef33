"""GDB adapter: GdbTarget and the one `pylife` command.

Only translation lives here: gdb API <-> Target, argv <-> pylife.commands,
PylifeError <-> gdb.GdbError.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
from collections.abc import Sequence

import gdb

from .. import env, lifecycle, linkmap
from ..commands import CommandFailed, execute, help_text
from ..errors import UnreadableMemory, UserError
from ..glibc import ThreadPointers
from ..render.color import stdout_is_terminal, wants_color
from ..session import Session
from ..target import (
    FAULT_SIGNALS,
    GENERAL_REGISTERS,
    SIGNAL_NAMES,
    BreakHit,
    FrameArgument,
    FrameArguments,
    FrameSymbols,
    Memory,
    Module,
    NativeFrame,
    ObjectTypeIs,
    OnBreak,
    OnHit,
    StopInfo,
    Symbol,
    Target,
    TargetKind,
    ThreadInfo,
    WatchHit,
)

_INFO_SYMBOL = re.compile(r"^.*? in section (\S+)(?: of (.+))?$")
_MASK64 = (1 << 64) - 1
# `disassemble` lines of return instructions: "   0x00007ffff7b0a4d6 <+54>:\tret"
_RETURN_LINE = re.compile(r"^\s*(?:=>\s*)?0x[0-9a-f]+ <\+(\d+)>:\s+(?:(?:repz|rep|bnd|notrack)\s+)*retq?\b", re.M)
# break_at handles live above gdb's breakpoint numbers (watch_write's handles).
_HOOK_BASE = 1 << 32


class GdbTarget(Target):
    debugger = "gdb"

    def __init__(self, inferior: gdb.Inferior) -> None:
        self.inferior = inferior
        self.symbols = FrameSymbols(lambda: {m.path: m.base for m in self.modules()})
        self._hooks: dict[int, _Hook] = {}  # break_at handle -> its hook (pending while .breakpoint is None)
        self._doomed: list[gdb.Breakpoint] = []  # disabled inside a stop(): deleted at the next safe point
        self.pthreads = ThreadPointers(self, lambda: (self.inferior.pid, _runs.count))

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
        spec = f"*({_C_TYPE_OF_SIZE[size]} *) {address:#x}"
        try:
            watchpoint = _RefcountWatchpoint(spec, on_hit)
        except (gdb.error, RuntimeError) as exc:
            raise UserError(f"cannot set a hardware watchpoint on {address:#x}: {exc}") from None
        return int(watchpoint.number)

    def remove(self, handle: int) -> None:
        hook = self._hooks.pop(handle, None)
        if hook is not None:
            _hooks_by_number.pop(handle - _HOOK_BASE, None)
            if hook.breakpoint is not None:
                self._delete(hook.breakpoint)
            return
        for breakpoint in gdb.breakpoints():
            if breakpoint.number == handle and breakpoint.is_valid():
                self._delete(breakpoint)

    def _delete(self, breakpoint: gdb.Breakpoint) -> None:
        # gdb must not delete a breakpoint inside a stop() method: disabling it
        # frees its hardware slot at once, the deletion waits for a safe point.
        if _callbacks.depth:
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
        handle = _HOOK_BASE + next(_hook_numbers)
        hook = self._hooks[handle] = _Hook(handle, symbol, offset, condition, on_hit)
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
        # BP_WATCHPOINT is software (no debug register).
        kinds = (gdb.BP_HARDWARE_WATCHPOINT, gdb.BP_READ_WATCHPOINT, gdb.BP_ACCESS_WATCHPOINT)
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
                return tuple(_split(match.group(1)))
            return (program,) if program else None
        if not program:
            return None
        try:
            # gdb 13's Python API does not expose the arguments (gdb.parameter("args") is empty).
            shown = gdb.execute("show args", to_string=True)
        except gdb.error:
            shown = ""
        match = re.search(r'"(.*)"\.?\s*$', shown, re.DOTALL)
        return (program, *_split(match.group(1) if match else ""))

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

    def stop_info(self, frames: int = 8) -> StopInfo | None:
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
        try:
            newest = gdb.newest_frame()
        except gdb.error:
            return StopInfo(thread.ptid[1] or thread.ptid[0], signal, code, fault, None, {}, ())
        registers: dict[str, int] = {}
        for name in GENERAL_REGISTERS:
            try:
                registers[name] = int(newest.read_register(name)) & _MASK64
            except (gdb.error, ValueError):
                continue
        arguments: list[FrameArguments] = []
        frame: gdb.Frame | None = newest
        while frame is not None and len(arguments) < frames:
            try:
                function, pc = frame.name(), frame.pc()
            except gdb.error:
                break
            arguments.append(FrameArguments(function, pc, _frame_arguments(frame), _frame_arguments(frame, local=True)))
            try:
                frame = frame.older()
            except gdb.error:
                break
        return StopInfo(thread.ptid[1] or thread.ptid[0], signal, code, fault, registers.get("rip"),
                        registers, tuple(arguments))


def _split(command_line: str) -> list[str]:
    try:
        return shlex.split(command_line)
    except ValueError:  # an unbalanced quote (a truncated command line)
        return command_line.split()


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


_C_TYPE_OF_SIZE = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int", 8: "unsigned long"}


class _RefcountWatchpoint(gdb.Breakpoint):
    """A write watchpoint whose stop() records the hit and usually continues."""

    def __init__(self, spec: str, on_hit: OnHit) -> None:
        # internal: no "Hardware watchpoint N" chatter (--json prints one line); `pylife watches` lists them.
        super().__init__(spec, gdb.BP_WATCHPOINT, gdb.WP_WRITE, internal=True)
        self.silent = True
        self._on_hit = on_hit

    def stop(self) -> bool:
        # Inside stop() gdb has selected the thread that hit, at its newest frame.
        thread = gdb.selected_thread()
        tid = (thread.ptid[1] or thread.ptid[0]) if thread is not None else None
        try:
            pc: int | None = gdb.newest_frame().pc()
        except gdb.error:
            pc = None
        with _callbacks:
            outcome = lifecycle.watch_hit(session_for(gdb.selected_inferior()), self._on_hit, WatchHit(tid, pc),
                                          self.number)
        if outcome.message:
            gdb.write(outcome.message + "\n")
        return outcome.stop


class _CallbackDepth:
    """How many pylife stop() methods are running (gdb forbids deleting breakpoints there)."""

    depth = 0

    def __enter__(self) -> None:
        _CallbackDepth.depth += 1
        _runs.count += 1  # the program ran up to this hit

    def __exit__(self, *exc: object) -> None:
        _CallbackDepth.depth -= 1


class _Runs:
    """Counts stops, resumes and hits: gdb has no stop id, and a table read at one
    stop (glibc's thread list) is stale once the program ran."""

    count = 0


_callbacks = _CallbackDepth()
_runs = _Runs()
_hook_numbers = itertools.count(1)


class _Hook:
    """A break_at request: its gdb breakpoint once placed, and its condition's values.

    The condition refers to convenience variables ($pylife_hN_I): changing the
    watched types inside a stop() then only sets variables, it never edits a
    breakpoint there."""

    def __init__(self, handle: int, symbol: str, offset: int, condition: ObjectTypeIs | None,
                 on_hit: OnBreak) -> None:
        self.handle, self.symbol, self.offset, self.on_hit = handle, symbol, offset, on_hit
        self.condition = condition
        self.breakpoint: gdb.Breakpoint | None = None
        self.variable = f"pylife_h{handle - _HOOK_BASE}"
        self.set_types(condition)

    def condition_text(self) -> str:
        """The cheap test gdb evaluates at every hit, then (only when it holds) pylife.

        gdb calls a breakpoint's Python stop() method BEFORE its condition, at
        every hit; a condition ending in a convenience function call costs
        Python only when its first part is true (&& short-circuits)."""
        call = f"$_pylife_hit({self.handle - _HOOK_BASE})"
        if self.condition is None:
            return call
        c = self.condition
        field = f"*(unsigned long *)(${c.register} + {c.type_offset})"
        alternatives = " || ".join(f"{field} == ${self.variable}_{i}" for i in range(ObjectTypeIs.MAX_TYPES))
        return f"${self.variable}_on && ${c.register} != 0 && ({alternatives}) && {call}"

    def set_types(self, condition: ObjectTypeIs | None) -> None:
        types = list(condition.types if condition is not None else ())[: ObjectTypeIs.MAX_TYPES]
        gdb.set_convenience_variable(f"{self.variable}_on", 1 if types else 0)
        if condition is not None and self.breakpoint is not None and self.breakpoint.is_valid():
            # A hook that can never match costs a trap per call: disabled (not deleted, allowed in stop()).
            self.breakpoint.enabled = bool(types)
        for index in range(ObjectTypeIs.MAX_TYPES):
            # 1 is never an object's type: an unused comparison is false.
            gdb.set_convenience_variable(f"{self.variable}_{index}", types[index] if index < len(types) else 1)

    def place(self, address: int) -> None:
        breakpoint = gdb.Breakpoint(f"*{address + self.offset:#x}", gdb.BP_BREAKPOINT, internal=True)
        breakpoint.silent = True
        breakpoint.condition = self.condition_text()
        self.breakpoint = breakpoint
        self.set_types(self.condition)
        _hooks_by_number[self.handle - _HOOK_BASE] = self

    def hit(self) -> bool:
        thread = gdb.selected_thread()
        frame = gdb.newest_frame()
        registers = [int(frame.read_register(name)) & _MASK64 for name in ("rip", "rsp", "rax", "rdi")]
        hit = BreakHit(thread.ptid[1] or thread.ptid[0] if thread is not None else None, *registers)
        with _callbacks:
            return self.on_hit(hit)


_hooks_by_number: dict[int, _Hook] = {}


class _PylifeHit(gdb.Function):
    """$_pylife_hit(N): run break_at hook N's on_hit; true stops at the prompt."""

    def __init__(self) -> None:
        super().__init__("_pylife_hit")

    def invoke(self, *args: gdb.Value) -> int:
        hook = _hooks_by_number.get(int(args[0])) if len(args) == 1 else None
        if hook is None or hook.breakpoint is None:
            return 0
        try:
            return 1 if hook.hit() else 0
        except Exception as exc:  # a traceback would abort the condition: say it, and stop
            gdb.write(f"pylife: internal error in a breakpoint hook: {type(exc).__name__}: {exc}\n")
            return 1


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


def _color() -> bool:
    try:
        style = bool(gdb.parameter("style enabled"))
    except (gdb.error, RuntimeError):
        style = False
    return wants_color(style, stdout_is_terminal())


def _main_file() -> str | None:
    progspace = gdb.current_progspace()
    return progspace.filename if progspace is not None else None


_sessions: dict[int, Session] = {}


def session_for(inferior: gdb.Inferior) -> Session:
    session = _sessions.get(inferior.num)
    if session is None or not isinstance(session.target, GdbTarget) or session.target.inferior is not inferior:
        session = Session(GdbTarget(inferior))
        _sessions[inferior.num] = session
    return session


def _modules_changed(_event: object = None) -> None:
    # A library was loaded (libpython during `run`) or all were dropped: pending hooks may be placed.
    for session in _sessions.values():
        lifecycle.modules_changed(session)
        lifecycle.safe_point(session)


def _on_exit(event: object = None) -> None:
    # gdb.ExitedEvent.exit_code is absent when gdb does not know it (e.g. after `kill`).
    status = getattr(event, "exit_code", None)
    for session in _sessions.values():
        screen = lifecycle.exit_summary(session, int(status) if status is not None else None)
        if screen:
            gdb.write(screen)
        lifecycle.process_gone(session)


def _on_stop(_event: object = None) -> None:
    _runs.count += 1
    for session in _sessions.values():
        lifecycle.safe_point(session)  # delete watchpoints retired inside stop() callbacks
        lifecycle.ran(session)


def _on_resume(_event: object = None) -> None:
    _runs.count += 1
    for session in _sessions.values():
        lifecycle.ran(session)


class PylifeCommand(gdb.Command):
    def __init__(self) -> None:
        super().__init__("pylife", gdb.COMMAND_DATA)

    def invoke(self, argument: str, from_tty: bool) -> None:
        env.warn_missing_once(gdb.write)
        session = session_for(gdb.selected_inferior())
        lifecycle.safe_point(session)
        try:
            output = execute(session, gdb.string_to_argv(argument), color=_color())
        except CommandFailed as exc:
            raise gdb.GdbError(str(exc)) from None
        gdb.write(output)


def register() -> None:
    PylifeCommand.__doc__ = help_text()
    PylifeCommand()
    _PylifeHit()
    gdb.events.new_objfile.connect(_modules_changed)
    gdb.events.clear_objfiles.connect(_modules_changed)
    gdb.events.exited.connect(_on_exit)
    gdb.events.stop.connect(_on_stop)
    gdb.events.cont.connect(_on_resume)
