"""gdb breakpoints pylife sets: refcount watchpoints and break_at hooks, run from gdb's callbacks.

GdbTarget (pylife.dbg.gdb) makes them; what a hit means is the core's
(pylife.lifecycle.watch_hit, the recorder's callbacks).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import gdb

from .. import lifecycle
from ..session import Session
from ..target import BreakHit, ObjectTypeIs, OnBreak, OnHit, WatchHit

_MASK64 = (1 << 64) - 1
# break_at handles live above gdb's breakpoint numbers (watch_write's handles).
HOOK_BASE = 1 << 32

C_TYPE_OF_SIZE = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int", 8: "unsigned long"}


class RefcountWatchpoint(gdb.Breakpoint):
    """A write watchpoint whose stop() records the hit and usually continues."""

    def __init__(self, spec: str, on_hit: OnHit, session: Callable[[], Session]) -> None:
        # internal: no "Hardware watchpoint N" chatter (--json prints one line); `pylife watches` lists them.
        super().__init__(spec, gdb.BP_WATCHPOINT, gdb.WP_WRITE, internal=True)
        self.silent = True
        self._on_hit = on_hit
        self._session = session

    def stop(self) -> bool:
        # Inside stop() gdb has selected the thread that hit, at its newest frame.
        thread = gdb.selected_thread()
        tid = (thread.ptid[1] or thread.ptid[0]) if thread is not None else None
        try:
            pc: int | None = gdb.newest_frame().pc()
        except gdb.error:
            pc = None
        with callbacks:
            outcome = lifecycle.watch_hit(self._session(), self._on_hit, WatchHit(tid, pc),
                                          self.number)
        if outcome.message:
            gdb.write(outcome.message + "\n")
        return outcome.stop


class CallbackDepth:
    """How many pylife stop() methods are running (gdb forbids deleting breakpoints there)."""

    depth = 0

    def __enter__(self) -> None:
        CallbackDepth.depth += 1
        runs.count += 1  # the program ran up to this hit

    def __exit__(self, *exc: object) -> None:
        CallbackDepth.depth -= 1


class Runs:
    """Counts stops, resumes and hits: gdb has no stop id, and a table read at one
    stop (glibc's thread list) is stale once the program ran."""

    count = 0


callbacks = CallbackDepth()
runs = Runs()
hook_numbers = itertools.count(1)


class Hook:
    """A break_at request: its gdb breakpoint once placed, and its condition's values.

    The condition refers to convenience variables ($pylife_hN_I): changing the
    watched types inside a stop() then only sets variables, it never edits a
    breakpoint there."""

    def __init__(self, handle: int, symbol: str, offset: int, condition: ObjectTypeIs | None,
                 on_hit: OnBreak) -> None:
        self.handle, self.symbol, self.offset, self.on_hit = handle, symbol, offset, on_hit
        self.condition = condition
        self.breakpoint: gdb.Breakpoint | None = None
        self.variable = f"pylife_h{handle - HOOK_BASE}"
        self.set_types(condition)

    def condition_text(self) -> str:
        """The cheap test gdb evaluates at every hit, then (only when it holds) pylife.

        gdb calls a breakpoint's Python stop() method BEFORE its condition, at
        every hit; a condition ending in a convenience function call costs
        Python only when its first part is true (&& short-circuits)."""
        call = f"$_pylife_hit({self.handle - HOOK_BASE})"
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
        hooks_by_number[self.handle - HOOK_BASE] = self

    def hit(self) -> lifecycle.HitOutcome:
        thread = gdb.selected_thread()
        try:
            frame = gdb.newest_frame()
            registers = [int(frame.read_register(name)) & _MASK64 for name in ("rip", "rsp", "rax", "rdi")]
        except gdb.error as exc:
            return lifecycle.HitOutcome(True, f"pylife: breakpoint {self.handle - HOOK_BASE}: cannot read the registers: {exc}")
        hit = BreakHit(thread.ptid[1] or thread.ptid[0] if thread is not None else None, *registers)
        with callbacks:
            return lifecycle.break_hit(self.on_hit, hit, self.handle - HOOK_BASE)


hooks_by_number: dict[int, Hook] = {}


class PylifeHit(gdb.Function):
    """$_pylife_hit(N): run break_at hook N's on_hit; true stops at the prompt."""

    def __init__(self) -> None:
        super().__init__("_pylife_hit")

    def invoke(self, *args: gdb.Value) -> int:
        hook = hooks_by_number.get(int(args[0])) if len(args) == 1 else None
        if hook is None or hook.breakpoint is None:
            return 0
        outcome = hook.hit()  # never raises: a traceback would abort the condition
        if outcome.message:
            gdb.write(outcome.message + "\n")
        return 1 if outcome.stop else 0
