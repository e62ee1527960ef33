"""The watch recorder: turns each hardware-watchpoint hit on ob_refcnt into an Event.

Hot path (design.md §4): one 8-byte read for the new value, the writer's C
frames up to ``depth``, and the Python stack walked from memory with code
objects cached across hits. Everything is captured as plain data at once.
The adapter calls :meth:`Recorder.on_hit` from its watchpoint callback and
continues the inferior unless it returns True.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Callable
from typing import Any

from ..cpython.culprit import describe
from ..cpython.frames import PyFrame, opcode_name
from ..cpython.handoff import call_release
from ..cpython.objects import Objects
from ..cpython.referrers import find_referrers
from ..cpython.runtime import Runtime
from ..cpython.stack import EVAL_FUNCTIONS, is_core_image
from ..cpython.thread_stack import StackReader
from ..cpython.threads import python_threads
from ..errors import NotLive, PylifeError, UserError
from ..frame_text import frame_site
from ..target import Memory, NativeFrame, OnHit, Target, TargetKind, WatchHit
from . import events as ev
from . import follow
from .classify import classify, new_occupant
from .context import TargetContext
from .events import Event, History
from .leaks import last_refcount, summarize
from .store import JsonlLog
from .watch import HARDWARE_SLOTS, Watch, WatchOptions
from .writers import REFCOUNT_HELPERS

MAX_POSITIONS = 4096  # Python frames read when a watch is set (Watch.positions)
ZERO_SCAN_SECONDS = 1.0  # the referrer scan at a watched object's decrement to zero
class Recorder:
    """Histories and live watches for one debugger session (kept across runs)."""

    def __init__(self, log_path: str | None = None) -> None:
        self.histories: dict[tuple[int, int], History] = {}  # (address, occupancy) -> history
        self.watches: dict[int, Watch] = {}
        self.seq = 0
        self.log = JsonlLog(log_path or default_log_path())
        self.stacks: StackReader | None = None  # the writers' stacks, caches kept across hits (thread_stack.py)
        self.pending_removals: list[int] = []  # watch handles to delete at the next safe point
        self.last_stop_message: str | None = None
        # Histories of the current process, in order (the leaks summary), and of the previous one.
        self.run_keys: list[tuple[int, int]] = []
        self.last_run_keys: list[tuple[int, int]] = []
        self.exit_summary: dict[str, Any] | None = None  # the leaks summary printed when the process last exited

    # ---- commands ---------------------------------------------------------

    def set_log(self, path: str) -> None:
        if path != self.log.path:
            self.log = JsonlLog(path)

    def watch(self, session: TargetContext, address: int, options: WatchOptions,
              arm: Callable[[int, int, OnHit], int], origin: str | None = None,
              allocation: dict[str, object] | None = None) -> tuple[Watch, list[str]]:
        """Watch the object at ``address``; ``origin`` and ``allocation``: a type
        watch caught it at its allocation (see typewatch.py)."""
        target = session.target
        if target.kind is TargetKind.CORE:
            raise NotLive("cannot watch on a core file: post-mortem has no future (pylife history --load reads a log)")
        if address in self.watches:
            raise UserError(f"{address:#x} is already watched")
        mem = session.memory()
        objects = session.objects(mem)
        fields = objects.layout.refcount_fields()
        others = target.other_hardware_watchpoints()
        if self.slots_used() + others + len(fields) > HARDWARE_SLOTS:
            used = ", ".join([f"{a:#x}" for a in self.watches] + ([f"{others} set in {target.debugger} by hand"] if others else []))
            need = "" if len(fields) == 1 else f"; a free-threaded object needs {len(fields)} (" + \
                " and ".join(name for name, _offset, _size in fields) + ")"
            raise UserError(f"all {HARDWARE_SLOTS} hardware watchpoint slots are in use ({used}){need}; "
                            "pylife unwatch one first")
        tp = objects.type_of(address)
        refcnt, immortal = objects.refcount(address)
        layout = objects.layout
        warnings = []
        if immortal and not options.follow:
            raise UserError(f"{address:#x} ({tp.qualified}) is immortal: CPython never writes its refcount, "
                            "so watching it would take a hardware slot and record nothing")
        if len(fields) > 1:
            warnings.append(f"free-threaded build: {' and '.join(n for n, _o, _s in fields)} are watched, "
                            f"{len(fields)} hardware slots for this object")
        field_address = address + fields[0][1]
        previous = self.history_of(address)
        history = History(address, tp.qualified, initial=refcnt,
                          occupancy=0 if previous is None else previous.occupancy + 1, origin=origin,
                          allocation=allocation)
        preheader = layout.preheader_size(tp.flags, objects.is_gc(address, tp))
        watch = Watch(history, field_address, fields[0][2], options, last=refcnt, block=address - preheader,
                      block_size=objects.size(address, tp), slots=len(fields),
                      positions=self._positions(session, mem, objects))
        # Nothing is recorded unless every watchpoint and the log work.
        try:
            for index, (_name, offset, size) in enumerate(fields):
                handle = arm(address + offset, size, lambda hit: self.on_hit(session, watch, hit))
                if index == 0:
                    watch.handle = handle
                else:
                    watch.more_handles.append(handle)
            self.log.watch(history)
        except PylifeError:
            for handle in watch.handles():
                target.remove(handle)
            raise
        self.histories[history.key] = history
        if not self.run_keys:
            self.exit_summary = None  # a new process: the last exit's screen is history
        self.run_keys.append(history.key)
        self.watches[address] = watch
        return watch, warnings

    def history_of(self, address: int) -> History | None:
        """The latest history recorded at ``address`` (its current or last occupant)."""
        latest = None
        for (where, _occupancy), history in self.histories.items():
            if where == address and (latest is None or history.occupancy > latest.occupancy):
                latest = history
        return latest

    def unwatch(self, address: int) -> Watch:
        watch = self.watches.pop(address, None)
        if watch is None:
            raise UserError(f"{address:#x} is not watched (see pylife watches)")
        if watch.history.closed is None:
            watch.history.closed = "unwatched by the user"
            self.log.close(watch.history)
        return watch

    def slots_used(self) -> int:
        """Hardware watchpoints in use: one per watched word (two per free-threaded object)."""
        return sum(w.slots for w in self.watches.values())

    def clear(self) -> None:
        self.histories = {key: h for key, h in self.histories.items() if key[0] in self.watches}

    def forget_process(self) -> list[int]:
        """The process exited or was restarted: close live histories, keep them.

        Returns the debugger handles of the watchpoints to delete (a watchpoint
        left armed would record the next run's writes into a closed history)."""
        handles = [h for w in self.watches.values() for h in w.handles()]
        handles += self.pending_removals
        self.pending_removals = []
        for watch in self.watches.values():
            watch.phase = "closed"
            if watch.history.closed is None:
                watch.history.closed = "the process exited"
                self.log.close(watch.history)
        self.watches.clear()
        if self.run_keys:
            self.last_run_keys, self.run_keys = self.run_keys, []
        if self.stacks is not None:
            self.stacks.forget()
        return handles

    def leaks(self, at_exit: bool = False, exit_status: int | None = None) -> dict[str, Any]:
        """The leaks summary of this process's watched objects (the previous process's once it is gone:
        the screen printed at its exit)."""
        if not self.run_keys and self.exit_summary is not None and not at_exit:
            return self.exit_summary
        rows = []
        for key in self.run_keys or self.last_run_keys:
            history = self.histories.get(key)
            if history is None:
                continue
            watch = self.watches.get(history.address)
            current = watch is not None and watch.history is history
            rows.append((history, watch.last if watch is not None and current else last_refcount(history), current))
        return summarize(rows, at_exit=at_exit, exit_status=exit_status)

    # ---- hot path -------------------------------------------------------------

    def on_hit(self, session: TargetContext, watch: Watch, hit: WatchHit) -> bool:
        """Record one write to the watched count; True means stop at the prompt."""
        try:
            return self._on_hit(session, watch, hit)
        except PylifeError as exc:  # never let a bad read kill the debugger's callback
            self.last_stop_message = f"pylife: watch {watch.history.address:#x}: {exc}"
            return watch.options.stop_on != "never"
        except Exception as exc:  # a bug in pylife: stop and say so, never a traceback in the debugger
            self.last_stop_message = f"pylife: internal error while recording {watch.history.address:#x}: " \
                                     f"{type(exc).__name__}: {exc}"
            return True

    def _on_hit(self, session: TargetContext, watch: Watch, hit: WatchHit) -> bool:
        target = session.target
        mem = Memory(target)
        runtime = session.runtime(mem)
        if watch.slots > 1:  # free-threaded: Py_REFCNT is ob_ref_local + (ob_ref_shared >> 2)
            new = Objects(mem, runtime.layout).refcount(watch.history.address)[0]
            written = new
        else:
            raw = target.read(watch.field_address, 8)
            written = struct.unpack("<q", raw)[0]  # the whole word: a free-list link is no count
            new = runtime.layout.decode_refcount(written)  # 3.14+: the low 32 bits
        old = watch.last
        if new == old or watch.phase == "closed":
            return False
        watch.last = new
        objects = Objects(mem, runtime.layout)
        tid = hit.tid if hit.tid is not None else target.current_thread()
        thread_stack = self._reader(target).read(mem, objects, runtime, tid, native_limit=watch.options.depth)
        native, python = thread_stack.native, thread_stack.python
        writer = next((f.function for f in native if f.function not in REFCOUNT_HELPERS), None)
        op = opcode_name(mem, objects, python[0]) if (python and _written_by_interpreter(native)) else None
        kind, message = classify(target, watch, objects, old, new, writer, native, written, self.seq + 1)
        release = None
        if kind == ev.ZERO:
            message = self._still_referenced(mem, runtime, objects, watch)
            if op is not None:
                release = self._release(target, objects, watch, python[0])
        if kind == ev.ALLOCATOR:
            new = written
        self.seq += 1
        top = thread_stack.top_python()
        stack, stack_text = self._reader(target).merged_json(thread_stack)
        history = watch.history
        victim = self._stale_victim(watch, kind, stack)
        if victim is not None:
            site = follow.extension_site(stack) or "?"
            kind, message, history = ev.USE_AFTER_FREE, follow.stale_message(
                site, watch.history.address, old, new, victim, watch.history), victim
        event = Event(self.seq, tid, old, new, kind, writer, op,
                      frame_site(top.function, top.code.filename, top.line) if top and top.code else None,
                      stack, message, release)
        closed: History | None = None
        if kind == ev.REUSE and watch.options.follow:
            closed, history = history, self._next_occupant(watch, objects, event)
        history.events.append(event)
        if kind == ev.ZERO:
            history.freed_at = event.seq
            watch.phase = "freed"
        elif kind in (ev.USE_AFTER_FREE, ev.DECREF_AFTER_FREE) and watch.phase == "freed":
            victim = history
        elif kind == ev.ALLOCATOR and watch.phase == "foreign":
            watch.phase = "freed"  # the allocator took the block back from the object that was not at the address
        elif kind == ev.REUSE and closed is None:
            history.closed = message
            watch.phase = "closed"
            self.watches.pop(history.address, None)
            self.pending_removals.extend(watch.handles())
        if watch.options.follow and (kind == ev.ZERO or victim is not None):
            freed = victim if victim is not None and kind != ev.ZERO else history
            for site in follow.sites_that_knew(freed):
                watch.stale_sites[site] = freed
        # After the bookkeeping: a log that cannot be written stops with a message, the phase stays right.
        if closed is not None:
            self.log.close(closed)
            self.log.watch(history)
        self.log.event(history, event, stack_text)
        if kind == ev.REUSE and closed is None:
            self.log.close(history)
        return self._should_stop(watch, event)

    @staticmethod
    def _release(target: Target, objects: Objects, watch: Watch, frame: PyFrame) -> dict[str, Any] | None:
        """The call whose result the interpreter is releasing, and whether the watch saw all of it."""
        found = call_release(target, objects, frame)
        if found is None:
            return None
        positions = watch.positions
        covered = positions is not None and not any(
            code == found.code and found.call - 1 <= unit <= found.release_end for code, unit in positions)
        return found.to_json(covered)

    def _positions(self, session: TargetContext, mem: Memory, objects: Objects) -> frozenset[tuple[int, int]] | None:
        """(code, code unit) of every Python frame of every thread now (bounded)."""
        reader = self._reader(session.target)  # its code objects are cached across watches (type watches: many)
        found: set[tuple[int, int]] = set()
        try:
            for thread in python_threads(mem, session.runtime(mem)):
                for frame in reader.python_frames(mem, objects, thread.tstate):
                    if frame.error or frame.code is None or frame.instr_index is None:
                        return None
                    found.add((frame.code.address, frame.instr_index))
                    if len(found) > MAX_POSITIONS:
                        return None
        except PylifeError:
            return None
        return frozenset(found)

    @staticmethod
    def _stale_victim(watch: Watch, kind: str, stack: list[dict[str, Any]]) -> History | None:
        """The freed occupant a write after a reuse was meant for, by the rule in follow.py."""
        if not watch.stale_sites or watch.phase not in ("alive", "foreign") or kind in (ev.REUSE, ev.ALLOCATOR):
            return None
        site = follow.extension_site(stack)
        return watch.stale_sites.get(site) if site is not None else None

    def _next_occupant(self, watch: Watch, objects: Objects, event: Event) -> History:
        """A followed block was handed to a new object: close the old history, open the new one."""
        old = watch.history
        old.closed = event.message or "memory reused"
        address = old.address
        try:
            tp = objects.type_of(address)
            kind, phase = tp.qualified, "alive"
        except PylifeError:  # the new object's header is elsewhere in the block: the word is its data
            kind, phase = f"{ev.FOREIGN_TYPE_PREFIX}: inside a {new_occupant(objects, watch)})", "foreign"
        history = History(address, kind, initial=0, occupancy=old.occupancy + 1, allocated_at=event.seq)
        self.histories[history.key] = history
        self.run_keys.append(history.key)
        watch.history = history
        watch.phase = phase
        return history

    def capture(self, session: TargetContext, tid: int | None, depth: int) -> dict[str, object]:
        """Where the thread is now (a new object's allocation): its merged C + Python stack."""
        mem = Memory(session.target)
        runtime = session.runtime(mem)
        reader = self._reader(session.target)
        thread_stack = reader.read(mem, Objects(mem, runtime.layout), runtime, tid, native_limit=depth)
        top = thread_stack.top_python()
        stack, _text = reader.merged_json(thread_stack)
        native = thread_stack.native
        return {"tid": tid, "function": native[0].function if native else None,
                "python": frame_site(top.function, top.code.filename, top.line) if top and top.code else None,
                "stack": stack}

    def _reader(self, target: Target) -> StackReader:
        if self.stacks is None or self.stacks.target is not target:
            self.stacks = StackReader(target, persistent=True)
        return self.stacks

    @staticmethod
    def _still_referenced(mem: Memory, runtime: Runtime, objects: Objects, watch: Watch) -> str | None:
        """At the decrement to zero: containers still pointing at the object are holding a
        reference that was never counted (cpython/referrers.py; bounded to a second)."""
        found = find_referrers(mem, runtime, objects, watch.history.address, max_seconds=ZERO_SCAN_SECONDS)
        return found.sentence(watch.history.address)

    def _should_stop(self, watch: Watch, event: Event) -> bool:
        stop_on = watch.options.stop_on
        reason: str | None = None
        writer = event.writer or "unknown"
        if stop_on == "never":
            reason = None
        elif event.kind in ev.ANOMALIES:
            reason = event.message
        elif stop_on == "change":
            reason = f"refcount of {watch.history.address:#x}: {event.old} -> {event.new} ({event.kind}) in {writer}"
        elif stop_on == "zero" and event.kind == ev.ZERO:
            reason = f"refcount of {watch.history.address:#x} reached 0 in {writer}: it is being freed"
        elif stop_on == "free" and event.kind == ev.ALLOCATOR and watch.phase == "freed":
            reason = f"{watch.history.address:#x} was returned to the allocator by {writer}"
        elif stop_on == "free" and event.kind == ev.ZERO and watch.block != watch.history.address:
            # The block starts before the object (GC head, pre-header): the allocator's
            # free-list link lands there, not on ob_refcnt, so this is the last visible step.
            reason = (f"refcount of {watch.history.address:#x} reached 0 in {writer}: it is being freed "
                      "(its allocator writes fall outside the watched count)")
        blame = event.culprit
        if reason is not None and blame is not None and blame.get("function") != event.writer:
            reason += f" [culprit: {describe(blame)}]"  # the user's code behind the CPython writer
        if reason is not None:
            if event.kind == ev.ZERO and event.message:
                reason += f"; {event.message}"
        limit = watch.options.max_events
        if reason is None and limit and len(watch.history.events) >= limit:
            reason = f"--max-events {limit} reached for {watch.history.address:#x}"
            watch.options.max_events = 0
        self.last_stop_message = f"pylife: {reason}" if reason else None
        return reason is not None


def _written_by_interpreter(native: list[NativeFrame]) -> bool:
    """The write was made by the interpreter executing an instruction: every
    frame up to the first eval-loop frame is in the core (Py_INCREF inlined
    into the loop, call_function on <= 3.10, list_subscript for BINARY_SUBSCR),
    not an extension's function called by the instruction."""
    for frame in native:
        if frame.function in EVAL_FUNCTIONS:
            return True
        if not is_core_image(frame.module):
            return False
    return False


def default_log_path() -> str:
    directory = os.environ.get("PYLIFE_LOG_DIR") or os.path.join(tempfile.gettempdir(), "pylife")
    return os.path.join(directory, f"history-{os.getpid()}.jsonl")
