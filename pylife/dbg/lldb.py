"""LLDB adapter: LldbTarget and the one `pylife` command.

Only translation lives here: SB API <-> Target, argv <-> pylife.commands,
PylifeError <-> the command's SBCommandReturnObject error.

lldb's expression evaluator is avoided where it can be: even with JIT disabled
it reserves scratch pages in a live inferior (lldb-server injects mmap calls)
and writes the result there. Registers, frame variables, globals, symbols and
C casts/dereferences of those are therefore resolved read-only through
SBFrame/SBValue, and only what is left goes to EvaluateExpression, with JIT
off so that it can never call a function in the target.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

import lldb  # type: ignore[import-not-found]

from .. import cexpr, env, lifecycle
from ..commands import DESCRIPTION, CommandFailed, execute, help_text
from ..errors import UnreadableMemory, UserError
from ..glibc import ThreadPointers
from ..render.color import stdout_is_terminal, wants_color
from ..session import Session
from ..target import (
    FAULT_SIGNALS,
    GENERAL_REGISTERS,
    BreakHit,
    FrameArgument,
    FrameArguments,
    FrameSymbols,
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

_MASK64 = (1 << 64) - 1
SIGTRAP = 5
TRAP_HWBKPT = 4  # si_code of a hardware watchpoint/breakpoint trap (<asm-generic/siginfo.h>)
# si_code of the other SIGTRAPs a program can get (<asm-generic/siginfo.h>).
_TRAP_CODES = {0: "SI_USER: kill()", -6: "SI_TKILL: raise() or tgkill()", 0x80: "SI_KERNEL: a breakpoint instruction",
               1: "TRAP_BRKPT", 2: "TRAP_TRACE"}
# Process plugins that read a post-mortem image rather than a live process.
_CORE_PLUGINS = ("elf-core", "mach-o-core", "minidump")
# Process states whose memory is gone: reads go to the image files, as in gdb.
_GONE = (lldb.eStateInvalid, lldb.eStateUnloaded, lldb.eStateDetached, lldb.eStateExited)
# Symbols that do not designate the object itself: imports and PLT stubs.
_SKIPPED_SYMBOLS = (lldb.eSymbolTypeInvalid, lldb.eSymbolTypeUndefined, lldb.eSymbolTypeTrampoline)
_AGGREGATES = (lldb.eTypeClassStruct, lldb.eTypeClassUnion, lldb.eTypeClassClass,
               lldb.eTypeClassArray, lldb.eTypeClassFunction)
_DIAGNOSTIC_PREFIX = re.compile(r"^error:\s*(<user expression \d+>:\d+:\d+:\s*)?")
_FAULT_ADDRESS = re.compile(r"fault address:\s*(0x[0-9a-fA-F]+)")
# break_at handles live above lldb's watchpoint ids (watch_write's handles).
_BREAK_BASE = 1 << 32


class _NotReadOnly(Exception):
    """The expression is beyond the read-only subset: hand it to lldb's evaluator."""


class LldbTarget(Target):
    debugger = "lldb"

    def __init__(self, target: lldb.SBTarget) -> None:
        # Keep the SBTarget, not the SBProcess: a relaunch makes a new process.
        self.target = target
        self.pthreads = ThreadPointers(self, self._stop_key)
        self._sections: tuple[tuple[int, int], list[tuple[int, int, str, str]]] | None = None
        self.symbols = FrameSymbols(lambda: {m.path: m.base for m in self.modules()})
        self._exit_breakpoint: int | None = None  # see _hook_exit

    @property
    def process(self) -> lldb.SBProcess:
        return self.target.GetProcess()

    @property
    def read_granule(self) -> int:
        # lldb-16 fetches memory in 512-byte cache lines, each a gdb-remote
        # round trip after a resume; 4 KiB pages cost ~15% more per watch hit
        # (benchmarks/bench_watch.py, 3.12) than 512-byte ones.
        return 512

    @property
    def kind(self) -> TargetKind:
        plugin = self.process.GetPluginName() if self.process.IsValid() else ""
        return TargetKind.CORE if plugin in _CORE_PLUGINS else TargetKind.LIVE

    def read(self, address: int, size: int) -> bytes:
        if size == 0:
            return b""
        process = self.process
        alive = process.IsValid() and process.GetState() not in _GONE
        reason = "no process"
        if alive:
            error = lldb.SBError()
            try:
                data = process.ReadMemory(address, size, error)
            except (OverflowError, TypeError, MemoryError, SystemError) as exc:
                raise UnreadableMemory(address, size, str(exc)) from None
            if error.Success() and data is not None and len(data) == size:
                return bytes(data)
            reason = error.GetCString() or "short read"
        if not alive or self.kind is TargetKind.CORE:
            # Like gdb: with no process, or for the read-only file-backed pages a
            # core leaves out (.rodata, e.g. Py_Version), read the image files.
            error = lldb.SBError()
            try:
                data = self.target.ReadMemory(lldb.SBAddress(address, self.target), size, error)
            except (OverflowError, TypeError, MemoryError, SystemError):
                data = None
            if error.Success() and data is not None and len(data) == size:
                return bytes(data)
            data = self._read_section(address, size)  # lldb-21: ReadMemory still asks the core first
            if data is not None:
                return data
        raise UnreadableMemory(address, size, reason)

    def _read_section(self, address: int, size: int) -> bytes | None:
        """Bytes of the image file section that holds [address, address + size), if one does."""
        resolved = self.target.ResolveLoadAddress(address)
        section = resolved.GetSection()
        if not section.IsValid() or resolved.GetOffset() + size > section.GetByteSize():
            return None
        error = lldb.SBError()
        try:
            data = section.GetSectionData(resolved.GetOffset(), size).ReadRawData(error, 0, size)
        except (OverflowError, TypeError, MemoryError, SystemError):
            return None
        return bytes(data) if error.Success() and data is not None and len(data) == size else None

    def symbol_address(self, name: str) -> int | None:
        # Module order is the dynamic linker's lookup order (executable first),
        # so the first exported definition is the one the program uses.
        fallback: int | None = None
        for module in self.target.module_iter():
            contexts = module.FindSymbols(name)
            for index in range(contexts.GetSize()):
                symbol = contexts.GetContextAtIndex(index).GetSymbol()
                if not symbol.IsValid() or symbol.GetType() in _SKIPPED_SYMBOLS:
                    continue
                address = symbol.GetStartAddress().GetLoadAddress(self.target)
                if address in (lldb.LLDB_INVALID_ADDRESS, 0):
                    continue
                if symbol.IsExternal():
                    return int(address)
                if fallback is None:
                    fallback = int(address)
        if fallback is not None:
            return fallback
        # Debug info only (a static with no symbol table entry).
        variable = self.target.FindFirstGlobalVariable(name)
        if variable.IsValid():
            address = variable.GetLoadAddress()
            if address not in (lldb.LLDB_INVALID_ADDRESS, 0):
                return int(address)
        return None

    def modules(self) -> Sequence[Module]:
        executable = self.target.GetExecutable()
        result: list[Module] = []
        for module in self.target.module_iter():
            path = module.GetFileSpec().fullpath
            if not path:
                continue
            header = module.GetObjectFileHeaderAddress()
            load = header.GetLoadAddress(self.target)
            bias = 0 if load == lldb.LLDB_INVALID_ADDRESS else (load - header.GetFileAddress()) & _MASK64
            entry = Module(path, bias)
            if executable.IsValid() and path == executable.fullpath:
                result.insert(0, entry)
            else:
                result.append(entry)
        return result

    def has_debug_info(self, function: str) -> bool:
        contexts = self.target.FindFunctions(function)  # a Function (not just a Symbol) comes from DWARF
        return any(contexts.GetContextAtIndex(i).GetFunction().IsValid() for i in range(contexts.GetSize()))

    def threads(self) -> Sequence[ThreadInfo]:
        process = self.process
        if not process.IsValid():
            return []
        # On Linux lldb's thread ID is the LWP. A core holds no thread names: lldb
        # gives its first thread the process name (NT_PRPSINFO), gdb none at all.
        core = self.kind is TargetKind.CORE
        threads = (ThreadInfo(int(t.GetThreadID()), None if core else t.GetName(), None) for t in process)
        return sorted(threads, key=lambda t: t.tid)

    def thread_pointer(self, tid: int) -> int | None:
        # lldb-16 has no fs_base register on x86-64 Linux (added in lldb 17),
        # live or in cores: glibc's thread list answers, read once per stop.
        if not self.process.IsValid():
            return None
        return self.pthreads.get(tid, None)

    def _stop_key(self) -> tuple[int, int]:
        process = self.process
        return (int(process.GetUniqueID()), int(process.GetStopID())) if process.IsValid() else (0, 0)

    def current_thread(self) -> int | None:
        thread = self.process.GetSelectedThread() if self.process.IsValid() else None
        return int(thread.GetThreadID()) if thread is not None and thread.IsValid() else None

    def native_frames(self, tid: int, limit: int, until: frozenset[str] = frozenset()) -> Sequence[NativeFrame]:
        thread = self.process.GetThreadByID(tid) if self.process.IsValid() else None
        if thread is None or not thread.IsValid():
            return []
        frames: list[NativeFrame] = []
        lookup = self.symbols.unwind()
        first = _first_frame_as_gdb(thread)
        for index in range(first, first + max(0, limit)):
            # GetFrameAtIndex unwinds lazily; GetNumFrames would unwind everything.
            frame = thread.GetFrameAtIndex(index)
            if not frame.IsValid():
                break
            pc = int(frame.GetPC())
            symbol = lookup(pc, lambda: _symbolize(frame))  # noqa: B023 - called at once
            name, file, line_number, module_path = symbol
            if name in until:
                frames.append(NativeFrame(pc, name, file, line_number, module_path, int(frame.GetSP())))
                break
            frames.append(NativeFrame(pc, name, file, line_number, module_path))
        return frames

    def watch_write(self, address: int, size: int, on_hit: OnHit) -> int:
        error = lldb.SBError()
        watchpoint = self.target.WatchAddress(address, size, False, True, error)
        if not error.Success() or not watchpoint.IsValid():
            reason = error.GetCString() or "refused"
            if "packet failed" in reason:  # lldb-16's words when the CPU has no free debug register
                reason = f"the hardware has no free debug register ({reason})"
            raise UserError(f"cannot set a hardware watchpoint on {address:#x}: {reason}")
        handle = int(watchpoint.GetID())
        # `-F func` callbacks stop at the prompt even when they return False; an
        # inline body that returns False lets the process run on (design.md §3).
        body = f"from {__name__} import on_watchpoint; return on_watchpoint(frame, wp)"
        returned = lldb.SBCommandReturnObject()
        interpreter = self.target.GetDebugger().GetCommandInterpreter()
        interpreter.HandleCommand(f"watchpoint command add -s python -o '{body}' {handle}", returned)
        if not returned.Succeeded():
            self.target.DeleteWatchpoint(handle)
            raise UserError(f"cannot attach pylife to watchpoint {handle}: {(returned.GetError() or '').strip()}")
        _watch_hooks[(int(self.process.GetUniqueID()), handle)] = (self, on_hit)
        self._hook_exit()
        return handle

    def _hook_exit(self) -> None:
        """A breakpoint on _exit that prints the leaks screen and runs on.

        lldb has no Python event for "the process exited" short of a listener
        thread; every exit path of a CPython process ends in libc's _exit
        (exit() after Py_FinalizeEx, os._exit, a C exit()), where the process
        is still there. Set once per target, with the first watch; the
        breakpoint stays for later runs of the same target."""
        if self._exit_breakpoint is not None and self.target.FindBreakpointByID(self._exit_breakpoint).IsValid():
            return
        breakpoint = self.target.BreakpointCreateByName("_exit")
        if not breakpoint.IsValid():
            return
        breakpoint.AddName("pylife-exit")  # so that `breakpoint list` says whose it is
        breakpoint.SetScriptCallbackBody(f"from {__name__} import on_exit_breakpoint; "
                                         "return on_exit_breakpoint(frame, bp_loc)")
        self._exit_breakpoint = int(breakpoint.GetID())

    def remove(self, handle: int) -> None:
        if handle >= _BREAK_BASE:
            _break_hooks.pop((self.target.GetDebugger().GetID(), handle - _BREAK_BASE), None)
            self.target.BreakpointDelete(handle - _BREAK_BASE)
            return
        _watch_hooks.pop((int(self.process.GetUniqueID()), handle), None)
        self.target.DeleteWatchpoint(handle)

    def break_at(self, symbol: str, offset: int, condition: ObjectTypeIs | None,
                 on_hit: OnBreak) -> int:
        process = self.process
        address = self.symbol_address(symbol) if process.IsValid() and process.GetState() not in _GONE else None
        if address is not None:
            breakpoint = self.target.BreakpointCreateByAddress(address + offset)
        else:
            # Pending: lldb resolves a breakpoint by name in every module that loads
            # later; -K false keeps the function's entry (no prologue skipped).
            returned = lldb.SBCommandReturnObject()
            slide = f" -R {offset}" if offset else ""
            self._command(f"breakpoint set -n {symbol} -K false{slide}", returned)
            match = re.search(r"Breakpoint (\d+):", returned.GetOutput() or "")
            breakpoint = self.target.FindBreakpointByID(int(match.group(1))) if match else lldb.SBBreakpoint()
        if not breakpoint.IsValid():
            raise UserError(f"cannot set a breakpoint at {symbol}+{offset}")
        number = int(breakpoint.GetID())
        # As for watchpoints (design.md §3): only an inline body returning False runs on.
        body = f"from {__name__} import on_breakpoint; return on_breakpoint(frame, bp_loc)"
        returned = lldb.SBCommandReturnObject()
        self._command(f"breakpoint command add -s python -o '{body}' {number}", returned)
        if not returned.Succeeded():
            self.target.BreakpointDelete(number)
            raise UserError(f"cannot attach pylife to breakpoint {number}: {(returned.GetError() or '').strip()}")
        _break_hooks[(self.target.GetDebugger().GetID(), number)] = (self, on_hit)
        handle = _BREAK_BASE + number
        self.set_condition(handle, condition)
        return handle

    def _command(self, command: str, returned: lldb.SBCommandReturnObject) -> None:
        self.target.GetDebugger().GetCommandInterpreter().HandleCommand(command, returned)

    def set_condition(self, handle: int, condition: ObjectTypeIs | None) -> None:
        breakpoint = self.target.FindBreakpointByID(handle - _BREAK_BASE)
        if not breakpoint.IsValid():
            return
        # lldb evaluates the condition itself (its IR interpreter: loads and compares)
        # and runs the callback only when it holds; a hook that cannot match is disabled.
        breakpoint.SetCondition(condition.c_expression() if condition is not None else "")
        breakpoint.SetEnabled(condition is None or bool(condition.types))

    def return_offsets(self, symbol: str) -> Sequence[int]:
        address = self.symbol_address(symbol)
        if address is None:
            return []
        resolved = self.target.ResolveLoadAddress(address)
        code = resolved.GetSymbol()
        if not code.IsValid() or code.GetStartAddress().GetLoadAddress(self.target) != address:
            return []
        offsets = []
        for instruction in code.GetInstructions(self.target):
            if (instruction.GetMnemonic(self.target) or "").split(" ")[-1] in ("ret", "retq"):
                offsets.append(int(instruction.GetAddress().GetLoadAddress(self.target)) - address)
        return offsets

    def forget_symbols(self) -> None:
        self.symbols.clear()

    def forget_process(self) -> None:
        """Another process (or none): pylife removed its handles; drop what is left of
        the old process's registrations (keyed by its unique id) and thread table."""
        self.pthreads.forget()
        for key in [k for k, (owner, _hook) in _watch_hooks.items() if owner is self]:
            del _watch_hooks[key]
            self.target.DeleteWatchpoint(key[1])

    def evaluate_address(self, expression: str, allow_call: bool = False) -> int:
        text = expression.strip()
        try:
            return self._read_only(cexpr.parse(text)) & _MASK64
        except _NotReadOnly:
            pass
        return self._evaluate(text, allow_call)

    # -- optional Target capabilities (defaults in pylife.target.Target) ------

    def other_hardware_watchpoints(self) -> int:
        process = int(self.process.GetUniqueID()) if self.process.IsValid() else 0
        count = 0
        for index in range(self.target.GetNumWatchpoints()):
            watchpoint = self.target.GetWatchpointAtIndex(index)
            if watchpoint.IsValid() and watchpoint.IsEnabled() and (process, int(watchpoint.GetID())) not in _watch_hooks:
                count += 1
        return count

    def function_at(self, pc: int) -> tuple[str, str | None] | None:
        resolved = self.target.ResolveLoadAddress(pc)
        symbol = resolved.GetSymbol()
        name = symbol.GetName() if symbol.IsValid() else None
        if not name:
            return None
        module = resolved.GetModule()
        return str(name), (module.GetFileSpec().fullpath if module.IsValid() else None)

    def program_arguments(self) -> tuple[str, ...] | None:
        """The launch arguments; on a core lldb-16 knows only the executable."""
        executable = self.target.GetExecutable()
        program = executable.fullpath if executable.IsValid() else None
        if not program:
            return None
        info = self.target.GetLaunchInfo()
        args = [info.GetArgumentAtIndex(i) for i in range(info.GetNumArguments())]
        return (program, *(a for a in args if a is not None))

    def section_of(self, address: int) -> tuple[str, str] | None:
        resolved = self.target.ResolveLoadAddress(address)
        section = resolved.GetSection()
        if section.IsValid() and section.GetName():
            module = resolved.GetModule()
            path = module.GetFileSpec().fullpath if module.IsValid() else ""
            return section.GetName(), path or ""
        # lldb-16 fails to resolve data addresses of images with a PT_TLS
        # segment (libpython3.12+): look the address up in the sections' load ranges.
        for start, end, name, path in self._section_table():
            if start <= address < end:
                return name, path
        return None

    def _section_table(self) -> list[tuple[int, int, str, str]]:
        key = (int(self.process.GetUniqueID()) if self.process.IsValid() else 0, int(self.target.GetNumModules()))
        if self._sections is not None and self._sections[0] == key:
            return self._sections[1]
        table: list[tuple[int, int, str, str]] = []
        for module in self.target.module_iter():
            path = module.GetFileSpec().fullpath or ""
            pending = [module.GetSectionAtIndex(i) for i in range(module.GetNumSections())]
            while pending and len(table) < 100_000:
                section = pending.pop()
                children = section.GetNumSubSections()
                if children:
                    pending.extend(section.GetSubSectionAtIndex(i) for i in range(children))
                    continue
                start = section.GetLoadAddress(self.target)
                size = section.GetByteSize()
                if start not in (lldb.LLDB_INVALID_ADDRESS, 0) and size:
                    table.append((int(start), int(start) + int(size), section.GetName() or "", path))
        self._sections = (key, table)
        return table

    def stop_info(self, frames: int = 8) -> StopInfo | None:
        process = self.process
        thread = process.GetSelectedThread() if process.IsValid() else None
        if thread is None or not thread.IsValid():
            return None
        description = thread.GetStopDescription(256) or None
        signal = fault = code = None
        if thread.GetStopReason() == lldb.eStopReasonSignal:
            number = int(thread.GetStopReasonDataAtIndex(0))
            signal = process.GetUnixSignals().GetSignalAsCString(number) or f"signal {number}"
            code, fault = _siginfo(thread, number)
            match = _FAULT_ADDRESS.search(description or "")
            if fault is None and match:
                fault = int(match.group(1), 16)
            if signal not in FAULT_SIGNALS:
                fault = None
        frame = thread.GetFrameAtIndex(0)
        registers: dict[str, int] = {}
        if frame.IsValid():
            for name in GENERAL_REGISTERS:
                value = frame.FindRegister(name)
                if value is not None and value.IsValid():
                    error = lldb.SBError()
                    number = value.GetValueAsUnsigned(error, 0)
                    if error.Success():
                        registers[name] = int(number) & _MASK64
        arguments: list[FrameArguments] = []
        for index in range(max(0, frames)):
            frame = thread.GetFrameAtIndex(index)
            if not frame.IsValid():
                break
            arguments.append(FrameArguments(frame.GetFunctionName(), int(frame.GetPC()), _frame_arguments(frame),
                                            _frame_arguments(frame, local=True)))
        instruction = None
        top = thread.GetFrameAtIndex(0)
        if signal in FAULT_SIGNALS and fault is None and top.IsValid():
            # lldb-16 does not read si_addr from ELF cores: the core computes it from the instruction.
            found = self.target.ReadInstructions(top.GetPCAddress(), 1, "intel")
            if found.GetSize():
                ins = found.GetInstructionAtIndex(0)
                instruction = f"{ins.GetMnemonic(self.target)} {ins.GetOperands(self.target)}"
        return StopInfo(int(thread.GetThreadID()), signal, code, fault, registers.get("rip"), registers,
                        tuple(arguments), description, instruction)

    # -- expressions -----------------------------------------------------

    def _frame(self) -> lldb.SBFrame:
        return self.process.GetSelectedThread().GetSelectedFrame()

    def _fail(self, text: str, reason: str) -> UserError:
        lines = reason.strip().splitlines()
        return UserError(f"cannot evaluate '{text}': {lines[0] if lines else 'unknown error'}")

    def _value_address(self, text: str, value: lldb.SBValue) -> int:
        """gdb's rule: an aggregate stands for its address, a scalar for its value."""
        canonical = value.GetType().GetCanonicalType()
        address = value.GetLoadAddress()
        reason = value.GetError().GetCString() if value.GetError().Fail() else None
        if canonical.GetTypeClass() in _AGGREGATES:
            if address == lldb.LLDB_INVALID_ADDRESS:
                raise self._fail(text, reason or "value has no address")
            return int(address)
        error = lldb.SBError()
        number = value.GetValueAsUnsigned(error, 0)
        if reason is None and error.Success():
            return int(number)
        raise self._fail(text, reason or error.GetCString() or "not a number")

    def _read_only(self, node: cexpr.Node) -> int:
        """Registers, variables, globals, symbols, `(T)x` and `*(T *)x` without lldb's evaluator."""
        if isinstance(node, cexpr.Number):
            return node.value
        frame = self._frame()
        if isinstance(node, cexpr.Register):
            register = frame.FindRegister(node.name) if frame.IsValid() else None
            if register is None or not register.IsValid():
                raise _NotReadOnly  # maybe a convenience variable such as $0
            return self._value_address(node.text, register)
        if isinstance(node, (cexpr.Named, cexpr.Other)):
            if frame.IsValid():  # a local or argument first, as C scoping says
                value = frame.GetValueForVariablePath(node.text)
                if value.IsValid():
                    return self._value_address(node.text, value)
            if isinstance(node, cexpr.Other):
                raise _NotReadOnly
            return self._global(node)
        text, words, stars = node.text, list(node.type_words), node.stars
        operand = self._read_only(node.operand)
        if not node.deref:
            if stars:
                return operand
            size = self._type(words).GetByteSize()
            return operand & ((1 << (8 * size)) - 1) if 0 < size < 8 else operand
        if stars == 0:
            raise _NotReadOnly  # `*(long)x` is not C; let lldb word the error
        if stars > 1:
            # The pointee is a pointer: 8 bytes, whatever the type (known or not).
            return int.from_bytes(self._read_memory(text, operand, 8), "little")
        pointee = self._type(words)
        if pointee.GetCanonicalType().GetTypeClass() in _AGGREGATES:
            return operand
        value = self.target.CreateValueFromAddress("pylife", lldb.SBAddress(operand, self.target), pointee)
        return self._value_address(text, value)

    def _global(self, named: cexpr.Named) -> int:
        """`name`, `&name`, `name.field`, `&name->field[2]`: a global variable, else a symbol.

        Names never reach lldb's evaluator: it would find nothing more, and its
        first use maps a probe page into a live inferior.
        """
        text, name, path = named.text, named.name, named.path
        variable = self.target.FindFirstGlobalVariable(name)
        if variable.IsValid():
            value = variable.GetValueForExpressionPath(path) if path else variable
            if not value.IsValid():
                raise self._fail(text, f"no member '{path}' in '{name}'")
            if named.address_of:
                address = value.GetLoadAddress()
                if address == lldb.LLDB_INVALID_ADDRESS:
                    raise self._fail(text, value.GetError().GetCString() or "value has no address")
                return int(address)
            return self._value_address(text, value)
        symbol = None if path else self.symbol_address(name)
        if symbol is None:
            raise self._fail(text, f"no variable or symbol '{name}' in the selected frame or the target")
        return symbol  # a function, or data without debug info: gdb gives the address too

    def _type(self, words: list[str]) -> lldb.SBType:
        names = [" ".join(words)]
        if words and words[0] in ("struct", "union"):
            names.append(" ".join(words[1:]))
        for name in names:
            found = self.target.FindFirstType(name)
            if found.IsValid():
                return found
        raise _NotReadOnly

    def _read_memory(self, text: str, address: int, size: int) -> bytes:
        try:
            return self.read(address, size)
        except UnreadableMemory as exc:
            raise self._fail(text, str(exc)) from None

    def _evaluate(self, text: str, allow_call: bool = False) -> int:
        value = self._expression(text, allow_call=allow_call)
        aggregate = value.GetType().GetCanonicalType().GetTypeClass() in _AGGREGATES
        if aggregate and value.GetLoadAddress() == lldb.LLDB_INVALID_ADDRESS:
            # A struct result is a copy in lldb's memory; ask for the original's address.
            value = self._expression(f"&({text})", text, allow_call)
        return self._value_address(text, value) & _MASK64

    def _expression(self, expression: str, shown: str | None = None, allow_call: bool = False) -> lldb.SBValue:
        frame = self._frame()
        options = lldb.SBExpressionOptions()
        # No JIT means the IR interpreter only: it refuses function calls
        # (the user's --allow-call lifts that).
        options.SetAllowJIT(allow_call)
        options.SetIgnoreBreakpoints(True)
        options.SetTryAllThreads(False)
        options.SetSuppressPersistentResult(True)
        options.SetTimeoutInMicroSeconds(2_000_000)
        if frame.IsValid():
            value = frame.EvaluateExpression(expression, options)
        else:
            value = self.target.EvaluateExpression(expression, options)
        if value is None or not value.IsValid():
            raise self._fail(shown or expression, "no value")
        if not value.GetError().Success():
            raise self._fail(shown or expression, _expression_error(value.GetError().GetCString() or ""))
        return value


def _siginfo(thread: lldb.SBThread, number: int) -> tuple[int | None, int | None]:
    """(si_code, si_addr) of a live stop (x86-64 siginfo_t: si_code @8, si_addr @16).

    lldb-16 answers "Not implemented" for ELF cores: then both are None."""
    value = thread.GetSiginfo()
    if not value.IsValid() or value.GetError().Fail():
        return None, None
    data = value.GetData()
    error = lldb.SBError()
    signo = data.GetSignedInt32(error, 0)
    if error.Fail() or signo != number:
        return None, None
    code = data.GetSignedInt32(error, 8)
    address = data.GetUnsignedInt64(error, 16)
    return (None, None) if error.Fail() else (int(code), int(address) & _MASK64)


def _frame_arguments(frame: lldb.SBFrame, local: bool = False) -> tuple[FrameArgument, ...]:
    """The frame's named arguments, or (``local``) its local variables in scope at the pc
    (debug info), as integers when they are pointers or integers."""
    values = frame.GetVariables(not local, local, False, True)  # arguments, locals, statics, in scope only
    result: list[FrameArgument] = []
    for index in range(values.GetSize()):
        value = values.GetValueAtIndex(index)
        type_class = value.GetType().GetCanonicalType().GetTypeClass()
        number: int | None = None
        if type_class in (lldb.eTypeClassPointer, lldb.eTypeClassBuiltin, lldb.eTypeClassEnumeration):
            error = lldb.SBError()
            raw = value.GetValueAsUnsigned(error, 0)
            if error.Success() and not value.GetError().Fail():
                number = int(raw) & _MASK64
        result.append(FrameArgument(value.GetName() or "?", value.GetTypeName() or "?", number))
    return tuple(result)


def _trap_code(thread: lldb.SBThread) -> int | None:
    """si_code of the SIGTRAP the thread stopped with (None when lldb cannot say)."""
    value = thread.GetSiginfo()
    if not value.IsValid() or value.GetError().Fail():
        return None
    data = value.GetData()
    error = lldb.SBError()
    signo = data.GetSignedInt32(error, 0)
    code = data.GetSignedInt32(error, 8)
    if error.Fail() or signo != SIGTRAP:
        return None
    return int(code)


def _first_frame_as_gdb(thread: lldb.SBThread) -> int:
    """Index of the innermost frame gdb would show after a watchpoint stop.

    A watchpoint reports the pc after the store. When that pc is the entry of
    an inlined call (say Py_SIZE), lldb shows the inlined callee as frame 0
    although none of it ran; gdb hides such frames (skip_inline_frames), and
    the writer is the caller. Same rule here, so both debuggers name the same writer.
    """
    if thread.GetStopReason() != lldb.eStopReasonWatchpoint:
        return 0
    index = 0
    while True:
        frame = thread.GetFrameAtIndex(index)
        if not frame.IsValid() or not frame.IsInlined():
            return index
        block = frame.GetFrameBlock()
        pc = frame.GetPCAddress()
        before = lldb.SBAddress(pc.GetLoadAddress(thread.GetProcess().GetTarget()) - 1, thread.GetProcess().GetTarget())
        if block.GetRangeIndexForBlockAddress(before) != lldb.UINT32_MAX:
            return index  # pc - 1 is inside the inlined call: it has started
        index += 1


def _expression_error(message: str) -> str:
    """The line of lldb's multi-line diagnostic that says what went wrong."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    errors = [_DIAGNOSTIC_PREFIX.sub("", line) for line in lines if line.startswith("error:")]
    reason = (errors or lines or ["unknown error"])[0]
    if "Interpreter doesn't handle" in reason:
        # lldb's wording ("without a running target") misleads: JIT is off on purpose.
        reason = "it needs code to run in the program (pylife runs no code in it; --allow-call permits it)"
    return reason


# -- sessions and the command ------------------------------------------------

# (process unique id, watchpoint id) -> (target, recorder callback). Keyed by
# process so that a watchpoint lldb re-arms in a relaunched process finds nothing.
_watch_hooks: dict[tuple[int, int], tuple[LldbTarget, OnHit]] = {}


def _symbolize(frame: lldb.SBFrame) -> Symbol:
    line = frame.GetLineEntry()
    module = frame.GetModule()
    return (
        frame.GetFunctionName(),
        line.GetFileSpec().fullpath if line.IsValid() else None,
        (int(line.GetLine()) or None) if line.IsValid() else None,
        module.GetFileSpec().fullpath if module.IsValid() else None,
    )


# (debugger id, breakpoint id) -> (target, break_at callback). Keyed by debugger, not
# process: a pending breakpoint set before `process launch` fires in the new process.
_break_hooks: dict[tuple[int, int], tuple[LldbTarget, OnBreak]] = {}


def _register(frame: lldb.SBFrame, name: str) -> int:
    value = frame.FindRegister(name)
    return int(value.GetValueAsUnsigned(0)) & _MASK64 if value is not None and value.IsValid() else 0


def on_breakpoint(frame: lldb.SBFrame, bp_loc: lldb.SBBreakpointLocation) -> bool:
    """Body of every pylife break_at breakpoint: True stops at the prompt."""
    breakpoint = bp_loc.GetBreakpoint()
    target = breakpoint.GetTarget()
    hook = _break_hooks.get((target.GetDebugger().GetID(), int(breakpoint.GetID())))
    if hook is None:
        return False
    adapter, on_hit = hook
    address = bp_loc.GetAddress()
    if address.GetSymbol().GetStartAddress().GetLoadAddress(target) != address.GetLoadAddress(target) \
            and breakpoint.GetNumLocations() > 1:
        # A by-name breakpoint also lands in inlined copies, where the
        # arguments are not in their registers: only the entry is meant.
        bp_loc.SetEnabled(False)
        return False
    thread = frame.GetThread()
    tid = int(thread.GetThreadID())
    hit = BreakHit(tid, int(frame.GetPC()), int(frame.GetSP()), _register(frame, "rax"), _register(frame, "rdi"))
    try:
        entry = next((e for e in _entries if e.session.target is adapter), None)
        if entry is not None:
            entry.session.apply_pending()  # lldb lets callbacks delete breakpoints: a safe point
        return bool(on_hit(hit))
    except Exception as exc:  # a traceback here would scroll past every hit: one line, and stop
        print(f"pylife: breakpoint {breakpoint.GetID()}: internal error: {type(exc).__name__}: {exc}")
        return True


def on_watchpoint(frame: lldb.SBFrame, wp: lldb.SBWatchpoint) -> bool:
    """Body of every pylife watchpoint command: True stops at the prompt."""
    thread = frame.GetThread()
    hook = _watch_hooks.get((int(thread.GetProcess().GetUniqueID()), int(wp.GetID())))
    if hook is None:
        return False
    target, on_hit = hook
    entry = next((e for e in _entries if e.session.target is target), None)
    if entry is None:
        return False
    code = _trap_code(thread)
    if code is not None and code != TRAP_HWBKPT:
        # lldb-16 reports any later SIGTRAP of the thread (the program's own
        # kill/raise, an int3) as a hit of this watchpoint (the debug status
        # register still names it); the kernel's si_code says what it was.
        # Stop, as gdb does, and as the program expects.
        print(f"pylife: the program's own SIGTRAP ({_TRAP_CODES.get(code, f'si_code {code}')}), "
              f"not a write to watched memory: stopped")
        return True
    # The hit's own thread: inside the callback lldb's selected thread may lag.
    hit = WatchHit(int(thread.GetThreadID()), int(frame.GetPC()))
    outcome = lifecycle.watch_hit(entry.session, on_hit, hit, int(wp.GetID()))
    if outcome.message:
        print(outcome.message, flush=True)
    return outcome.stop


def on_exit_breakpoint(frame: lldb.SBFrame, location: lldb.SBBreakpointLocation) -> bool:
    """Body of pylife's _exit breakpoint: print the leaks screen, never stop."""
    target = frame.GetThread().GetProcess().GetTarget()
    entry = next((e for e in _entries if e.target == target), None)
    if entry is None:
        return False
    status = None
    register = frame.FindRegister("rdi")  # _exit(int status): x86-64 SysV first argument
    if register is not None and register.IsValid():
        error = lldb.SBError()
        value = register.GetValueAsUnsigned(error, 0)
        status = int(value) & 0xFF if error.Success() else None
    screen = lifecycle.exit_summary(entry.session, status)
    if screen:
        print(screen, end="", flush=True)
    return False  # never a stop on the way out


class _Entry:
    def __init__(self, target: lldb.SBTarget) -> None:
        self.target = target
        self.adapter = LldbTarget(target)
        self.session = Session(self.adapter)
        self.fingerprint: tuple[int, int, bool, int] | None = None
        self.stop_id = -1  # SBProcess.GetStopID(): changes at every resume and stop


_entries: list[_Entry] = []


def session_for(target: lldb.SBTarget) -> Session:
    """One session per SBTarget, reset when its process or module list changes.

    lldb has no Python hook for "process exited / relaunched" short of a
    listener thread, so each command compares a fingerprint instead.
    """
    if not target.IsValid():
        return Session(LldbTarget(target))  # nothing to remember without a target
    entry = next((e for e in _entries if e.target == target), None)
    if entry is None:
        entry = _Entry(target)
        _entries.append(entry)
    process = target.GetProcess()
    alive = process.IsValid() and process.GetState() not in _GONE
    fingerprint = (
        int(process.GetUniqueID()) if process.IsValid() else 0,
        int(process.GetProcessID()) if process.IsValid() else 0,
        alive,
        int(target.GetNumModules()),
    )
    previous, entry.fingerprint = entry.fingerprint, fingerprint
    if previous is not None and previous[2] and previous[:3] != fingerprint[:3]:
        lifecycle.process_gone(entry.session)  # another process (or none): like gdb's exited event
    elif previous != fingerprint:
        lifecycle.modules_changed(entry.session)
    stop_id = int(process.GetStopID()) if process.IsValid() else -1
    if stop_id != entry.stop_id:  # the process ran since the last command
        entry.stop_id = stop_id
        lifecycle.ran(entry.session)
    lifecycle.safe_point(entry.session)  # watchpoints retired inside callbacks, pending type watches
    return entry.session


class PylifeCommand:
    """`command script add -c` protocol: lldb makes one instance per registration."""

    def __init__(self, debugger: lldb.SBDebugger, internal_dict: dict[str, object]) -> None:
        del debugger, internal_dict

    def get_short_help(self) -> str:
        return f"pylife VERB ...: {DESCRIPTION}"

    def get_long_help(self) -> str:
        return help_text()

    def __call__(self, debugger: lldb.SBDebugger, command: str, exe_ctx: lldb.SBExecutionContext,
                 result: lldb.SBCommandReturnObject) -> None:
        env.warn_missing_once(result.Print)
        try:
            argv = shlex.split(command)
        except ValueError as exc:  # unbalanced quotes
            result.SetError(f"pylife: {exc}")
            return
        # The selected target, like lldb's own commands: inside `script` or a
        # `command script import`, exe_ctx stays frozen on the target that was
        # selected when that command began, even after `target create/select`.
        target = debugger.GetSelectedTarget()
        if not target.IsValid() and exe_ctx is not None:
            target = exe_ctx.GetTarget()
        try:
            # Without a target, help still works and verbs fail as in gdb without a file.
            output = execute(session_for(target), argv,
                             color=wants_color(bool(debugger.GetUseColor()), stdout_is_terminal()))
        except CommandFailed as exc:
            result.SetError(str(exc))
            return
        except Exception as exc:  # lldb would print a traceback: keep one line
            result.SetError(f"pylife: internal error: {type(exc).__name__}: {exc}")
            return
        result.Print(output)
        result.SetStatus(lldb.eReturnStatusSuccessFinishResult)


def register(debugger: lldb.SBDebugger, class_path: str) -> None:
    """Add the `pylife` command; ``class_path`` must resolve in lldb's session dict."""
    returned = lldb.SBCommandReturnObject()
    debugger.GetCommandInterpreter().HandleCommand(f"command script add -o -c {class_path} pylife", returned)
    if not returned.Succeeded():
        print(f"pylife: cannot register the command: {returned.GetError().strip()}")
