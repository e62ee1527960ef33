"""gdb run control for the batch agent (pylife.batch.agent): launch, resume, why it stopped.

Started by the batch driver as
``gdb -nx -batch -ex 'source gdb_pylife.py' -ex 'python ...main(CONFIG)'``:
everything happens inside that one Python command, so an error cannot make
gdb skip the rest of a command file, and pending breakpoints are switched
on explicitly (gdb -batch answers "N" to the question otherwise).
"""

from __future__ import annotations

import os
import shlex

import gdb

from ..batch.agent import Stop, run_agent
from ..errors import UserError
from ..session import Session
from ..target import SIGNAL_NAMES
from .gdb import session_for

_SETTINGS = (
    "set confirm off",
    "set pagination off",
    "set width 0",
    "set breakpoint pending on",  # -batch would answer "N": the run would go on without the breakpoint
    "set disable-randomization on",  # addresses repeat from run to run
    "handle SIGINT stop print pass",  # the driver's stop request; the program's own SIGINT is passed on
    "handle SIGTRAP stop print nopass",
    # gdb puts its screen size in the inferior's environment: it would differ from a run without gdb
    # and from lldb's, and the environment's size moves the heap (os.environ is copied into it).
    "unset environment LINES",
    "unset environment COLUMNS",
)


class GdbControl:
    debugger = "gdb"

    def __init__(self) -> None:
        self._stop: Stop | None = None
        gdb.events.stop.connect(self._on_stop)
        gdb.events.exited.connect(self._on_exit)

    def session(self) -> Session:
        return session_for(gdb.selected_inferior())

    def prepare(self) -> None:
        for command in _SETTINGS:
            gdb.execute(command, to_string=True)

    def launch(self, program: list[str], cwd: str, stdin: str, stdout: str, stderr: str) -> int:
        gdb.execute(f"file {_quote(program[0])}", to_string=True)
        gdb.execute(f"set cwd {cwd}", to_string=True)
        # gdb starts the program through the shell: redirections are shell syntax.
        arguments = " ".join(shlex.quote(a) for a in program[1:])
        gdb.execute(f"set args {arguments} < {shlex.quote(stdin)} > {shlex.quote(stdout)} 2> {shlex.quote(stderr)}",
                    to_string=True)
        try:
            gdb.execute("starti", to_string=True)
        except gdb.error as exc:
            raise UserError(f"gdb cannot start {program[0]}: {exc}") from None
        pid = gdb.selected_inferior().pid
        if not pid:
            raise UserError(f"gdb did not start {program[0]}")
        return int(pid)

    def resume(self, pass_signal: bool = False) -> Stop:
        # Which signals reach the program is gdb's `handle` table (see _SETTINGS).
        self._stop = None
        try:
            gdb.execute("continue", to_string=True)
        except gdb.error as exc:
            if not self.alive():
                return self._stop or Stop("gone", description=str(exc))
            raise UserError(f"continue failed: {exc}") from None
        return self._stop or (Stop("gone") if not self.alive() else Stop("other", description="stopped"))

    def _on_stop(self, event: gdb.StopEvent) -> None:
        if isinstance(event, gdb.SignalEvent):
            name = str(event.stop_signal)
            number = next((n for n, s in SIGNAL_NAMES.items() if s == name), None)
            self._stop = Stop("signal", signal=name, signal_number=number, description=f"signal {name}")
        elif isinstance(event, gdb.BreakpointEvent):
            point = event.breakpoints[0]
            kind = "watchpoint" if point.type in (gdb.BP_WATCHPOINT, gdb.BP_HARDWARE_WATCHPOINT) else "breakpoint"
            self._stop = Stop(kind, breakpoint=int(point.number), description=f"{kind} {point.number}")
        else:
            self._stop = Stop("other", description=type(event).__name__)

    def _on_exit(self, event: gdb.ExitedEvent) -> None:
        code = int(event.exit_code) if hasattr(event, "exit_code") else None
        signal = None
        if code is None:
            try:
                number = int(gdb.parse_and_eval("$_exitsignal"))
                signal = SIGNAL_NAMES.get(number, f"signal {number}")
            except (gdb.error, ValueError):
                signal = None
        self._stop = Stop("exited", exit_code=code, signal=signal, description="exited")

    def break_function(self, function: str) -> int:
        try:
            point = gdb.Breakpoint(function, internal=False)
        except (gdb.error, RuntimeError) as exc:
            raise UserError(f"cannot set a breakpoint on {function}: {exc}") from None
        return int(point.number)

    def select_frame(self, function: str) -> bool:
        try:
            frame: gdb.Frame | None = gdb.newest_frame()
            for _ in range(64):
                if frame is None:
                    return False
                if frame.name() == function and frame.type() != gdb.INLINE_FRAME:
                    frame.select()
                    return True
                frame = frame.older()
        except gdb.error:
            return False
        return False

    def watch_write_stop(self, address: int) -> int:
        try:
            point = gdb.Breakpoint(f"*(long *) {address:#x}", gdb.BP_WATCHPOINT, gdb.WP_WRITE)
        except (gdb.error, RuntimeError) as exc:
            raise UserError(f"cannot watch {address:#x}: {exc}") from None
        return int(point.number)

    def delete_watch(self, number: int) -> None:
        for point in gdb.breakpoints():
            if point.number == number and point.is_valid():
                point.delete()

    def kill(self) -> None:
        if self.alive():
            gdb.execute("kill", to_string=True)

    def alive(self) -> bool:
        inferior = gdb.selected_inferior()
        return inferior is not None and bool(inferior.pid)

    def save_core(self, path: str) -> None:
        try:
            gdb.execute(f"gcore {path}", to_string=True)  # the rest of the line, unquoted
        except gdb.error as exc:
            raise UserError(f"gcore failed: {exc}") from None
        if not os.path.exists(path):
            raise UserError(f"gcore wrote nothing at {path}")

    def open_core(self, core: str, executable: str | None) -> None:
        gdb.execute("set confirm off", to_string=True)
        try:
            if executable:
                gdb.execute(f"file {_quote(executable)}", to_string=True)
            gdb.execute(f"core-file {core}", to_string=True)  # the rest of the line, unquoted
        except gdb.error as exc:
            raise UserError(f"gdb cannot open the core {core}: {exc}") from None


def _quote(path: str) -> str:
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main(config_path: str) -> None:
    run_agent(GdbControl, config_path)
