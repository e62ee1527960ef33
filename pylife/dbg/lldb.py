"""LLDB adapter: LldbTarget.

Only translation lives here: SB API <-> Target. C expressions are evaluated
read-only in lldb_expr; lldb's callbacks, the inferred process events and the
`pylife` command are in lldb_events.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import lldb  # type: ignore[import-not-found]

from ..errors import UnreadableMemory, UserError
from ..frame_symbols import FrameSymbols
from ..glibc import ThreadPointers
from ..target import (
    FAULT_SIGNALS,
    FrameArguments,
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
from .lldb_expr import evaluate_address
from .lldb_frames import first_frame_as_gdb, frame_arguments, siginfo, symbolize
from .lldb_sections import SectionTable, read_section

_MASK64 = (1 << 64) - 1
_EVENTS = f"{__package__}.lldb_events"  # the module lldb's callback bodies import


def _lldb_major() -> int:
    match = re.search(r"lldb version (\d+)", lldb.SBDebugger.GetVersionString() or "")
    return int(match.group(1)) if match else 0


# lldb-16's Watchpoint::DumpSnapshots prints no value line for an aggregate (tested with
# lldb-16 and lldb-21 only: the newer one dumps it).
_AGGREGATE_WATCH_VALUE_UNSHOWN = 0 < _lldb_major() <= 16
# lldb 18 made a write watchpoint a "modify" one by default (SBTarget.WatchAddress and
# SBValue.Watch as well): after the callback asks to stop, lldb compares the word with the
# value it captured at the last stop it reported, and runs on when they are equal. pylife's
# callback lets most hits through, so lldb's value is stale: in the borrowed scenario the
# watch starts at refcount 1, the free (1 -> 0) runs on, and the use after free (0 -> 1)
# "changed nothing" for lldb-21, which ran past it (StopInfoWatchpoint::PerformAction,
# Watchpoint::WatchedValueReportable). An always-write watchpoint stops where pylife says.
_WATCH_WRITES_ARE_MODIFY = _lldb_major() >= 18
_UNSIGNED_OF_SIZE = {2: lldb.eBasicTypeUnsignedShort, 4: lldb.eBasicTypeUnsignedInt, 8: lldb.eBasicTypeUnsignedLongLong}
# Process plugins that read a post-mortem image rather than a live process.
_CORE_PLUGINS = ("elf-core", "mach-o-core", "minidump")
# Process states whose memory is gone: reads go to the image files, as in gdb.
GONE = (lldb.eStateInvalid, lldb.eStateUnloaded, lldb.eStateDetached, lldb.eStateExited)
# Symbols that do not designate the object itself: imports and PLT stubs.
_SKIPPED_SYMBOLS = (lldb.eSymbolTypeInvalid, lldb.eSymbolTypeUndefined, lldb.eSymbolTypeTrampoline)
_FAULT_ADDRESS = re.compile(r"fault address:\s*(0x[0-9a-fA-F]+)")
# break_at handles live above lldb's watchpoint ids (watch_write's handles).
_BREAK_BASE = 1 << 32


class LldbTarget(Target):
    debugger = "lldb"

    def __init__(self, target: lldb.SBTarget) -> None:
        # Keep the SBTarget, not the SBProcess: a relaunch makes a new process.
        self.target = target
        self.pthreads = ThreadPointers(self, self._stop_key)
        self.sections = SectionTable(target)
        self.symbols = FrameSymbols(lambda: {m.path: m.base for m in self.modules()})
        self._exit_breakpoint: int | None = None  # see _hook_exit
        self.stop_hook = False  # see _hook_stop

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
        alive = process.IsValid() and process.GetState() not in GONE
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
            data = read_section(self.target, address, size)  # lldb-21: ReadMemory still asks the core first
            if data is not None:
                return data
        raise UnreadableMemory(address, size, reason)

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
        first = first_frame_as_gdb(thread)
        for index in range(first, first + max(0, limit)):
            # GetFrameAtIndex unwinds lazily; GetNumFrames would unwind everything.
            frame = thread.GetFrameAtIndex(index)
            if not frame.IsValid():
                break
            pc = int(frame.GetPC())
            symbol = lookup(pc, lambda: symbolize(frame))  # noqa: B023 - called at once
            name, file, line_number, module_path = symbol
            if name in until:
                frames.append(NativeFrame(pc, name, file, line_number, module_path, int(frame.GetSP())))
                break
            frames.append(NativeFrame(pc, name, file, line_number, module_path))
        return frames

    def watch_write(self, address: int, size: int, on_hit: OnHit) -> int:
        error = lldb.SBError()
        watchpoint = self._watch(address, size, error)
        if not error.Success() or not watchpoint.IsValid():
            reason = (error.GetCString() or "refused").strip().splitlines()[0]
            if "packet failed" in reason:  # lldb-16's words when the CPU has no free debug register
                reason = "the CPU has no free debug register (x86-64 has 4; hardware breakpoints use them too)"
            raise UserError(f"cannot set a hardware watchpoint on {address:#x}: {reason}")
        handle = int(watchpoint.GetID())
        # `-F func` callbacks stop at the prompt even when they return False; an
        # inline body that returns False lets the process run on (design.md §3).
        body = f"from {_EVENTS} import on_watchpoint; return on_watchpoint(frame, wp)"
        returned = lldb.SBCommandReturnObject()
        interpreter = self.target.GetDebugger().GetCommandInterpreter()
        interpreter.HandleCommand(f"watchpoint command add -s python -o '{body}' {handle}", returned)
        if not returned.Succeeded():
            self.target.DeleteWatchpoint(handle)
            raise UserError(f"cannot attach pylife to watchpoint {handle}: {(returned.GetError() or '').strip()}")
        watch_hooks[(int(self.process.GetUniqueID()), handle)] = (self, on_hit)
        self._hook_exit()
        self._hook_stop()
        return handle

    def _watch(self, address: int, size: int, error: lldb.SBError) -> lldb.SBWatchpoint:
        """A write watchpoint whose lldb value is an array (``unsigned long[1]``).

        At every stop lldb-16 prints a watchpoint's old and new values after its
        callback has run, and the old one is stale: lldb captures values only at
        the stops pylife lets through (hit 1000 says "old value" of hit 0). An
        aggregate has no value line in lldb-16: it says only "Watchpoint N hit:".
        lldb-21 dumps the aggregate ("old value: ([0] = 1)"): the scalar there."""
        if _WATCH_WRITES_ARE_MODIFY:
            options = lldb.SBWatchpointOptions()
            options.SetWatchpointTypeWrite(lldb.eWatchpointWriteTypeAlways)
            return self.target.WatchpointCreateByAddress(address, size, options, error)
        basic = _UNSIGNED_OF_SIZE.get(size)
        if basic is None or not _AGGREGATE_WATCH_VALUE_UNSHOWN:
            return self.target.WatchAddress(address, size, False, True, error)
        array = self.target.GetBasicType(basic).GetArrayType(1)
        value = self.target.CreateValueFromAddress("pylife", lldb.SBAddress(address, self.target), array)
        return value.Watch(True, False, True, error)

    def _hook_stop(self) -> None:
        """A stop hook that prints the line a watch stop left (lldb_events.on_stop).

        A watchpoint callback runs before lldb prints "Watchpoint N hit:": a line
        printed there would come first. Stop hooks run after it. Set once per target
        (again if the user deleted it: the callbacks print at once meanwhile)."""
        listed = lldb.SBCommandReturnObject()
        self._command("target stop-hook list", listed)
        self.stop_hook = "_pylife_events.on_stop" in (listed.GetOutput() or "")
        if self.stop_hook:
            return
        returned = lldb.SBCommandReturnObject()
        self._command(f'target stop-hook add -o "script import {_EVENTS} as _pylife_events; '
                      '_pylife_events.on_stop(lldb.debugger)"', returned)
        self.stop_hook = returned.Succeeded()

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
        breakpoint.SetScriptCallbackBody(f"from {_EVENTS} import on_exit_breakpoint; "
                                         "return on_exit_breakpoint(frame, bp_loc)")
        self._exit_breakpoint = int(breakpoint.GetID())

    def remove(self, handle: int) -> None:
        if handle >= _BREAK_BASE:
            break_hooks.pop((self.target.GetDebugger().GetID(), handle - _BREAK_BASE), None)
            self.target.BreakpointDelete(handle - _BREAK_BASE)
            return
        watch_hooks.pop((int(self.process.GetUniqueID()), handle), None)
        self.target.DeleteWatchpoint(handle)

    def break_at(self, symbol: str, offset: int, condition: ObjectTypeIs | None,
                 on_hit: OnBreak) -> int:
        process = self.process
        address = self.symbol_address(symbol) if process.IsValid() and process.GetState() not in GONE else None
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
        body = f"from {_EVENTS} import on_breakpoint; return on_breakpoint(frame, bp_loc)"
        returned = lldb.SBCommandReturnObject()
        self._command(f"breakpoint command add -s python -o '{body}' {number}", returned)
        if not returned.Succeeded():
            self.target.BreakpointDelete(number)
            raise UserError(f"cannot attach pylife to breakpoint {number}: {(returned.GetError() or '').strip()}")
        break_hooks[(self.target.GetDebugger().GetID(), number)] = (self, on_hit)
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

    def section_of(self, address: int) -> tuple[str, str] | None:
        return self.sections.section_of(address)

    def forget_symbols(self) -> None:
        self.symbols.clear()

    def forget_process(self) -> None:
        """Another process (or none): pylife removed its handles; drop what is left of
        the old process's registrations (keyed by its unique id) and thread table."""
        self.pthreads.forget()
        for key in [k for k, (owner, _hook) in watch_hooks.items() if owner is self]:
            del watch_hooks[key]
            self.target.DeleteWatchpoint(key[1])

    def evaluate_address(self, expression: str, allow_call: bool = False) -> int:
        return evaluate_address(self, expression, allow_call)

    # -- optional Target capabilities (defaults in pylife.target.Target) ------

    def other_hardware_watchpoints(self) -> int:
        process = int(self.process.GetUniqueID()) if self.process.IsValid() else 0
        count = 0
        for index in range(self.target.GetNumWatchpoints()):
            watchpoint = self.target.GetWatchpointAtIndex(index)
            if watchpoint.IsValid() and watchpoint.IsEnabled() and (process, int(watchpoint.GetID())) not in watch_hooks:
                count += 1
        for index in range(self.target.GetNumBreakpoints()):  # `breakpoint set -H`: one register per location
            breakpoint = self.target.GetBreakpointAtIndex(index)
            if breakpoint.IsValid() and breakpoint.IsEnabled() and breakpoint.IsHardware():
                count += int(breakpoint.GetNumResolvedLocations())
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

    def _stopped_thread(self) -> lldb.SBThread | None:
        process = self.process
        thread = process.GetSelectedThread() if process.IsValid() else None
        return thread if thread is not None and thread.IsValid() else None

    def stop_reason(self) -> StopReason | None:
        thread = self._stopped_thread()
        if thread is None:
            return None
        description = thread.GetStopDescription(256) or None
        signal = fault = code = None
        if thread.GetStopReason() == lldb.eStopReasonSignal:
            number = int(thread.GetStopReasonDataAtIndex(0))
            signal = self.process.GetUnixSignals().GetSignalAsCString(number) or f"signal {number}"
            code, fault = siginfo(thread, number)
            match = _FAULT_ADDRESS.search(description or "")
            if fault is None and match:
                fault = int(match.group(1), 16)
            if signal not in FAULT_SIGNALS:
                fault = None
        instruction = None
        top = thread.GetFrameAtIndex(0)
        if signal in FAULT_SIGNALS and fault is None and top.IsValid():
            # lldb-16 does not read si_addr from ELF cores: the core computes it from the instruction.
            found = self.target.ReadInstructions(top.GetPCAddress(), 1, "intel")
            if found.GetSize():
                ins = found.GetInstructionAtIndex(0)
                instruction = f"{ins.GetMnemonic(self.target)} {ins.GetOperands(self.target)}"
        return StopReason(int(thread.GetThreadID()), signal, code, fault, description, instruction)

    def stop_register(self, name: str) -> int | None:
        thread = self._stopped_thread()
        frame = thread.GetFrameAtIndex(0) if thread is not None else None
        value = frame.FindRegister(name) if frame is not None and frame.IsValid() else None
        if value is None or not value.IsValid():
            return None
        error = lldb.SBError()
        number = value.GetValueAsUnsigned(error, 0)
        return int(number) & _MASK64 if error.Success() else None

    def stop_frame(self, index: int) -> FrameArguments | None:
        thread = self._stopped_thread()
        frame = thread.GetFrameAtIndex(index) if thread is not None else None
        if frame is None or not frame.IsValid():
            return None
        return FrameArguments(frame.GetFunctionName(), int(frame.GetPC()), frame_arguments(frame),
                              frame_arguments(frame, local=True))


# -- what pylife set, for the callbacks (pylife.dbg.lldb_events) ---------------

# (process unique id, watchpoint id) -> (target, recorder callback). Keyed by
# process so that a watchpoint lldb re-arms in a relaunched process finds nothing.
watch_hooks: dict[tuple[int, int], tuple[LldbTarget, OnHit]] = {}


# (debugger id, breakpoint id) -> (target, break_at callback). Keyed by debugger, not
# process: a pending breakpoint set before `process launch` fires in the new process.
break_hooks: dict[tuple[int, int], tuple[LldbTarget, OnBreak]] = {}
