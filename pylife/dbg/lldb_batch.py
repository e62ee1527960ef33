"""lldb run control for the batch agent (pylife.batch.agent): launch, resume, why it stopped.

Started by the batch driver as ``lldb-16 -b -o 'command script import
lldb_pylife.py' -o 'script ...main(lldb.debugger, CONFIG)' -k 'process kill'``:
the whole run is that one `script` command, so lldb's batch mode cannot skip
the commands that follow a crash. The debugger runs synchronously, and the
process is resumed with `process continue` through the command interpreter,
as a user would: pylife's watchpoint commands then run and continue on
their own (design.md §3).
"""

from __future__ import annotations

import os

import lldb  # type: ignore[import-not-found]

from ..batch.agent import Stop, run_agent
from ..errors import UserError
from ..session import Session
from ..target import SIGNAL_NAMES
from .lldb_events import session_for


class LldbControl:
    debugger = "lldb"

    def __init__(self, debugger: lldb.SBDebugger) -> None:
        self.sb = debugger
        self.target: lldb.SBTarget | None = None

    def _command(self, line: str) -> str:
        returned = lldb.SBCommandReturnObject()
        self.sb.GetCommandInterpreter().HandleCommand(line, returned)
        if not returned.Succeeded():
            raise UserError(f"lldb: {line}: {(returned.GetError() or 'failed').strip()}")
        return returned.GetOutput() or ""

    def session(self) -> Session:
        return session_for(self.sb.GetSelectedTarget())

    def prepare(self) -> None:
        self.sb.SetAsync(False)
        self._command("settings set target.disable-aslr true")  # addresses repeat from run to run

    def launch(self, program: list[str], cwd: str, stdin: str, stdout: str, stderr: str) -> int:
        error = lldb.SBError()
        target = self.sb.CreateTarget(program[0], None, None, True, error)
        if not error.Success() or not target.IsValid():
            raise UserError(f"lldb cannot load {program[0]}: {error.GetCString() or 'invalid target'}")
        self.target = target
        info = lldb.SBLaunchInfo(program[1:])
        info.SetWorkingDirectory(cwd)
        # Exactly the driver's environment (lldb adds nothing): the heap layout depends on its size.
        info.SetEnvironmentEntries([f"{k}={v}" for k, v in os.environ.items()], False)
        info.AddOpenFileAction(0, stdin, True, False)
        info.AddOpenFileAction(1, stdout, False, True)
        info.AddOpenFileAction(2, stderr, False, True)
        info.SetLaunchFlags(info.GetLaunchFlags() | lldb.eLaunchFlagStopAtEntry | lldb.eLaunchFlagDisableASLR)
        process = target.Launch(info, error)
        if not error.Success() or not process.IsValid():
            raise UserError(f"lldb cannot start {program[0]}: {error.GetCString() or 'no process'}")
        # The driver's stop request arrives as SIGINT; the program's own SIGINT is passed on.
        self._command("process handle SIGINT -s true -p true -n true")
        return int(process.GetProcessID())

    def resume(self, pass_signal: bool = False) -> Stop:
        process = self.sb.GetSelectedTarget().GetProcess()
        try:
            self._command("process continue")
        except UserError:
            if not self.alive():
                return self._exited(process)
            raise
        state = process.GetState()
        if state in (lldb.eStateExited, lldb.eStateDetached, lldb.eStateInvalid):
            return self._exited(process)
        if state == lldb.eStateCrashed:
            return Stop("signal", signal="SIGSEGV", description="crashed")
        for thread in process:
            reason = thread.GetStopReason()
            if reason == lldb.eStopReasonSignal:
                number = int(thread.GetStopReasonDataAtIndex(0))
                name = SIGNAL_NAMES.get(number) or process.GetUnixSignals().GetSignalAsCString(number)
                return Stop("signal", signal=name, signal_number=number, description=f"signal {name}")
            if reason == lldb.eStopReasonBreakpoint:
                number = int(thread.GetStopReasonDataAtIndex(0))
                return Stop("breakpoint", breakpoint=number, description=f"breakpoint {number}")
            if reason == lldb.eStopReasonWatchpoint:
                return Stop("watchpoint", breakpoint=int(thread.GetStopReasonDataAtIndex(0)), description="watchpoint")
            if reason == lldb.eStopReasonException:
                text = thread.GetStopDescription(256) or "exception"
                for number, name in SIGNAL_NAMES.items():
                    if name in text:
                        return Stop("signal", signal=name, signal_number=number, description=text)
                return Stop("other", description=text)
        return Stop("other", description="stopped")

    @staticmethod
    def _exited(process: lldb.SBProcess) -> Stop:
        description = process.GetExitDescription() or ""
        code = int(process.GetExitStatus())
        for number, name in SIGNAL_NAMES.items():  # "Terminated due to signal 9"
            if description.endswith(f"signal {number}") or name in description:
                return Stop("exited", signal=name, description=description)
        return Stop("exited", exit_code=code, description=description or "exited")

    def break_function(self, function: str) -> int:
        target = self.sb.GetSelectedTarget()
        point = target.BreakpointCreateByName(function)  # unresolved names stay pending until a module has them
        if not point.IsValid():
            raise UserError(f"cannot set a breakpoint on {function}")
        return int(point.GetID())

    def select_frame(self, function: str) -> bool:
        thread = self.sb.GetSelectedTarget().GetProcess().GetSelectedThread()
        for index in range(min(thread.GetNumFrames(), 64)):
            frame = thread.GetFrameAtIndex(index)
            if frame.GetFunctionName() == function and not frame.IsInlined():
                thread.SetSelectedFrame(index)
                return True
        return False

    def watch_write_stop(self, address: int) -> int:
        error = lldb.SBError()
        point = self.sb.GetSelectedTarget().WatchAddress(address, 8, False, True, error)
        if not error.Success() or not point.IsValid():
            raise UserError(f"cannot watch {address:#x}: {error.GetCString() or 'refused'}")
        return int(point.GetID())

    def delete_watch(self, number: int) -> None:
        self.sb.GetSelectedTarget().DeleteWatchpoint(number)

    def kill(self) -> None:
        process = self.sb.GetSelectedTarget().GetProcess()
        if process.IsValid() and self.alive():
            process.Kill()

    def alive(self) -> bool:
        process = self.sb.GetSelectedTarget().GetProcess()
        return process.IsValid() and process.GetState() in (lldb.eStateStopped, lldb.eStateRunning,
                                                            lldb.eStateStepping, lldb.eStateCrashed,
                                                            lldb.eStateSuspended)

    def save_core(self, path: str) -> None:
        error = self.sb.GetSelectedTarget().GetProcess().SaveCore(path)
        if not error.Success() or not os.path.exists(path):
            # lldb-16 has no ELF core writer on Linux (tests/integration/conftest.py).
            raise UserError(f"lldb cannot write a core at {path}: {error.GetCString() or 'nothing written'} "
                            "(lldb-16 has no ELF core writer: use --debugger gdb for --core-on-crash)")

    def open_core(self, core: str, executable: str | None) -> None:
        error = lldb.SBError()
        target = self.sb.CreateTarget(executable or "", None, None, True, error)
        if not target.IsValid():
            raise UserError(f"lldb cannot load {executable}: {error.GetCString() or 'invalid target'}")
        process = target.LoadCore(core, error)
        if not error.Success() or not process.IsValid():
            raise UserError(f"lldb cannot open the core {core}: {error.GetCString() or 'invalid'}")


def main(debugger: lldb.SBDebugger, config_path: str) -> None:
    run_agent(lambda: LldbControl(debugger), config_path)
