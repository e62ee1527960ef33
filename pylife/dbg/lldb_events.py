"""lldb's callbacks, the process events inferred from them, and the one `pylife` command.

lldb-16's Python API has no event for "the process exited / was relaunched /
loaded a module" short of a listener thread: session_for compares a
fingerprint at each command and hands what changed to pylife.lifecycle, the
one sequence gdb's events run too. Watchpoint and breakpoint bodies run the
recorder's callbacks. Only translation lives here: argv <-> pylife.commands,
PylifeError <-> the command's SBCommandReturnObject error.
"""

from __future__ import annotations

import shlex

import lldb  # type: ignore[import-not-found]

from .. import env, lifecycle
from ..commands import DESCRIPTION, CommandFailed, execute, help_text
from ..render.color import stdout_is_terminal, wants_color
from ..session import Session
from ..target import BreakHit, WatchHit
from .lldb import GONE, LldbTarget, break_hooks, watch_hooks

_MASK64 = (1 << 64) - 1
SIGTRAP = 5
TRAP_HWBKPT = 4  # si_code of a hardware watchpoint/breakpoint trap (<asm-generic/siginfo.h>)
# si_code of the other SIGTRAPs a program can get (<asm-generic/siginfo.h>).
_TRAP_CODES = {0: "SI_USER: kill()", -6: "SI_TKILL: raise() or tgkill()", 0x80: "SI_KERNEL: a breakpoint instruction",
               1: "TRAP_BRKPT", 2: "TRAP_TRACE"}


def _register(frame: lldb.SBFrame, name: str) -> int:
    value = frame.FindRegister(name)
    return int(value.GetValueAsUnsigned(0)) & _MASK64 if value is not None and value.IsValid() else 0


def on_breakpoint(frame: lldb.SBFrame, bp_loc: lldb.SBBreakpointLocation) -> bool:
    """Body of every pylife break_at breakpoint: True stops at the prompt."""
    breakpoint = bp_loc.GetBreakpoint()
    target = breakpoint.GetTarget()
    hook = break_hooks.get((target.GetDebugger().GetID(), int(breakpoint.GetID())))
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
    entry = next((e for e in _entries if e.session.target is adapter), None)
    if entry is not None:
        entry.session.apply_pending()  # lldb lets callbacks delete breakpoints: a safe point
    outcome = lifecycle.break_hit(on_hit, hit, int(breakpoint.GetID()))
    if outcome.message:
        print(outcome.message, flush=True)
    return outcome.stop


def on_watchpoint(frame: lldb.SBFrame, wp: lldb.SBWatchpoint) -> bool:
    """Body of every pylife watchpoint command: True stops at the prompt."""
    thread = frame.GetThread()
    hook = watch_hooks.get((int(thread.GetProcess().GetUniqueID()), int(wp.GetID())))
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
        _say_at_stop(entry, thread, f"pylife: the program's own SIGTRAP ({_TRAP_CODES.get(code, f'si_code {code}')}), "
                                    f"not a write to watched memory: stopped")
        return True
    # The hit's own thread: inside the callback lldb's selected thread may lag.
    hit = WatchHit(int(thread.GetThreadID()), int(frame.GetPC()))
    outcome = lifecycle.watch_hit(entry.session, on_hit, hit, int(wp.GetID()))
    if outcome.stop and outcome.message:
        _say_at_stop(entry, thread, outcome.message)
    return outcome.stop


def _say_at_stop(entry: _Entry, thread: lldb.SBThread, line: str) -> None:
    """Print ``line`` when this stop is reported: from pylife's stop hook, after lldb's
    own "Watchpoint N hit:" (at once when the hook could not be set)."""
    if not entry.adapter.stop_hook:
        print(line, flush=True)
        return
    entry.stop_lines.append((int(thread.GetProcess().GetStopID()), line))


def on_stop(debugger: lldb.SBDebugger) -> None:
    """Body of pylife's stop hook: the lines watch hits left for this stop."""
    target = debugger.GetSelectedTarget()
    entry = next((e for e in _entries if e.target == target), None)
    if entry is None or not entry.stop_lines:
        return
    process = target.GetProcess()
    stop_id = int(process.GetStopID()) if process.IsValid() else -1
    lines = [line for when, line in entry.stop_lines if when == stop_id]
    entry.stop_lines.clear()  # a line of an earlier stop was for a stop lldb did not report
    for line in lines:
        print(line, flush=True)


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
        self.stop_lines: list[tuple[int, str]] = []  # (stop id, line) for the stop hook to print


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
    alive = process.IsValid() and process.GetState() not in GONE
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
