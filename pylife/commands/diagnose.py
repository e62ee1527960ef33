"""`pylife diagnose`: at a crash stop or on a core, what happened, to which object, and what bug it looks like."""

from __future__ import annotations

import argparse
from typing import Any

from ..batch.report import rerun_command
from ..cpython import crash, liveness
from ..cpython.culprit import culprit, describe
from ..cpython.frame_slots import frame_slots
from ..cpython.frames import PyFrame
from ..cpython.objects import Objects
from ..cpython.pymalloc_stats import corrupt_free_lists
from ..cpython.referrers import find_referrers
from ..cpython.thread_stack import StackReader
from ..errors import PylifeError
from ..frame_text import frame_at
from ..record import events as ev
from ..record.balance import borrowed_return
from ..report import Report
from ..session import Session
from ..stopinfo import read_stop_info
from ..target import StopInfo, Target

HELP = "after a crash (SIGSEGV, SIGBUS, SIGABRT) or on a core: the signal, the objects involved and their verdicts, the kind of bug"
MAX_OBJECTS = 8
MAX_CANDIDATES = 40
MAX_NATIVE = 256
MAX_PYTHON_FRAMES = 32  # Python frames whose locals and value stacks are searched for the victim
MAX_PYTHON_CANDIDATES = 64  # their pointers assessed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=16, help="C frames whose arguments are checked (default 16)")
    parser.add_argument("--referrers", action="store_true",
                        help="scan the GC-tracked containers for pointers to the freed object even when it is "
                             "not the crashing frame's (done by default for the crashing frame's)")
    parser.add_argument("--stack", type=int, default=30, help="frames of the merged stack shown (default 30)")


def run(session: Session, args: argparse.Namespace) -> Report:
    target = session.target
    mem = session.memory()
    runtime = session.runtime(mem)
    objects = session.objects(mem)
    notes: list[str] = []
    stop: StopInfo | None = None
    try:
        stop = read_stop_info(target, max(1, args.frames))
    except PylifeError as exc:
        notes.append(f"stop details unavailable: {exc}")
    else:
        if stop is None:
            notes.append(f"{target.debugger} gives no stopped thread: no signal or registers")
    tid = stop.tid if stop is not None and stop.tid is not None else target.current_thread()
    native = list(target.native_frames(tid, MAX_NATIVE)) if tid is not None else []
    fatal = crash.recognise_fatal(native, stop.frames if stop is not None else (), mem)
    assessor = liveness.Assessor(target, mem, runtime, objects)
    assessed: list[crash.Assessed] = []
    for candidate in crash.candidates(stop, fatal)[:MAX_CANDIDATES]:
        found = _assess(assessor, objects, candidate)
        if found is not None:
            assessed.append(found)
    thread_stack = StackReader(session.target).read(mem, objects, runtime, tid, native=native)
    notes.extend(thread_stack.notes)
    python = thread_stack.python
    if not any(a.verdict == liveness.FREED and a.candidate.role not in crash.WEAK_ROLES for a in assessed):
        # Search wider: a stale pointer may survive only in a Python frame's locals or value stack.
        held = _python_frame_objects(assessor, objects, python,
                                     {a.candidate.address for a in assessed if a.candidate.role not in crash.WEAK_ROLES})
        # A register pointing at what a Python frame holds: the frame is the better source.
        again = {a.candidate.address for a in held}
        assessed = [a for a in assessed if a.candidate.address not in again] + held
    signal = stop.signal if stop is not None else None
    code = stop.code if stop is not None else None
    fault = stop.fault_address if stop is not None else None
    effective_code = code
    sent = code is not None and code <= 0 and signal in ("SIGSEGV", "SIGBUS")
    if sent:
        # Sent by a process (kill, tgkill: si_code SI_USER 0, SI_TKILL -6, include/uapi/asm-generic/siginfo.h):
        # si_addr then overlays the sender's pid and uid; no memory access faulted.
        fault = None
        notes.append(f"{signal} was sent by a process (si_code {code}), not raised by a memory access: no fault address")
    if fault is None and stop is not None and signal in ("SIGSEGV", "SIGBUS") and not sent:
        fault = crash.fault_from_instruction(stop.instruction, stop.registers)
        if fault is not None:
            # What the kernel would have said: SI_KERNEL (a #GP) for a non-canonical address, else SEGV_MAPERR.
            effective_code = 128 if crash.non_canonical(fault) else 1
            notes.append(f"fault address {fault:#x} computed from the faulting instruction ({stop.instruction}): "
                         "the debugger did not give it")
    free_lists: list[str] = []
    if signal in ("SIGSEGV", "SIGBUS") and fatal is None:
        try:
            free_lists = corrupt_free_lists(target, mem, runtime)
        except PylifeError as exc:
            notes.append(f"pymalloc's pools not checked: {exc}")
    kind, evidence = crash.classify(signal, effective_code, fault, fatal, assessed, native, stop, free_lists)
    severity = {"FREED": 0, "CORRUPT": 0, "ALIVE": 1}
    # Leftover value-stack slots (frame_slots.py) last: a popped slot often points at a temporary freed since.
    shown = sorted(assessed, key=lambda a: (a.candidate.role == crash.PYTHON_LEFTOVER,
                                            severity.get(a.verdict, 2)))[:MAX_OBJECTS]
    full_stack = [frame.to_json() for frame in thread_stack.merged()]
    stack = full_stack[: max(0, args.stack)]
    function = native[0].function if native else None
    blame = culprit(full_stack)
    # A freed object some frame holds before one a register (or a leftover slot) happens to point at.
    victim = next((a for a in shown if a.verdict == "FREED" and a.candidate.role not in crash.WEAK_ROLES), None) or \
        next((a for a in shown if a.verdict == "FREED" and a.candidate.role != crash.PYTHON_LEFTOVER), None)
    erased = victim is not None and victim.type is None and any("0xDD" in r for r in victim.reasons)
    rerun = _rerun(target, victim.candidate.address) if erased and victim is not None else None
    holders = None
    if victim is not None and (args.referrers or victim.candidate.crashing or victim.candidate.deallocated):
        holders = find_referrers(mem, runtime, objects, victim.candidate.address)
    recorded = _recorded_cause(session, victim.candidate.address) if victim is not None else None
    if recorded:
        notes.append(recorded)
    watch_stop = session.recorder.last_stop_message if signal in (None, "SIGTRAP") else None
    if watch_stop and kind == "unknown":
        kind, evidence = _watch_stop_kind(session, watch_stop)
    data: dict[str, Any] = {
        "signal": signal,
        "kind": kind,
        "summary": _summary(signal, code, fault, function, fatal, kind, evidence, blame, stack,
                            victim.candidate.address if erased and victim is not None else None, rerun,
                            holders.sentence(victim.candidate.address) if holders and victim else None, recorded),
        "culprit": blame,
        "victim": None if victim is None else {"address": victim.candidate.address, "type": victim.type,
                                               "type_erased": erased, "source": victim.candidate.source},
        "rerun": rerun,
        "still_referenced": holders.to_json() if holders is not None else None,
        "free_lists": free_lists,
        "objects": [{"address": a.candidate.address, "verdict": a.verdict, "type": a.type, "reasons": list(a.reasons),
                     "source": a.candidate.source} for a in shown],
        "stack": stack,
        "fault_address": fault,
        "si_code": code,
        "function": function,
        "fatal_error": None if fatal is None else {"function": fatal.function, "category": fatal.category,
                                                   "message": fatal.message, "origin": fatal.origin},
        "evidence": evidence,
        "tid": tid,
        "notes": notes,
    }
    return Report("diagnose", data, warnings=list(runtime.layout.warnings))


def _assess(assessor: liveness.Assessor, objects: Objects, candidate: crash.Candidate) -> crash.Assessed | None:
    try:
        verdict = assessor.assess(candidate.address)
    except PylifeError:
        return None
    if verdict.verdict == liveness.UNKNOWN:
        return None
    if not candidate.typed and not _freed_block_start(candidate.address, verdict) and (
            verdict.verdict != liveness.ALIVE or verdict.allocator.get("region") == "static"):
        # From untyped sources (registers): objects that are there, but not the never-freed
        # static ones, and freed blocks only where an object would start.
        return None
    type_name = verdict.stale_type
    refcount = None
    if verdict.verdict == liveness.CORRUPT and type_name is None:
        # A bad refcount (the object of _Py_NegativeRefcount) leaves a valid type; a bad ob_type fails here.
        try:
            type_name = objects.type_of(candidate.address).qualified
        except PylifeError:
            pass
    if verdict.verdict == liveness.ALIVE:
        try:
            type_name = objects.type_of(candidate.address).qualified
            refcount = objects.refcount(candidate.address)[0]
        except PylifeError:
            return None
    return crash.Assessed(candidate, verdict.verdict, type_name, tuple(verdict.reasons), refcount)


def _freed_block_start(address: int, verdict: liveness.Verdict) -> bool:
    """A FREED verdict for an address where an object starts in its block (after a GC head or
    pre-header at most), or inside 0xDD fill: a register pointing into the freed heap."""
    if verdict.verdict != liveness.FREED or "new_object" in verdict.allocator:
        return False
    if any("0xDD" in reason for reason in verdict.reasons):
        return True
    block = verdict.allocator.get("block")
    return isinstance(block, int) and address - block in (0, 16, 32)


def _python_frame_objects(assessor: liveness.Assessor, objects: Objects, python: list[PyFrame],
                          seen: set[int]) -> list[crash.Assessed]:
    """The freed or corrupt objects the crashing thread's Python frames point at (bounded). A local
    or a slot under a known stack top holds a reference (typed); a leftover slot is only a candidate."""
    found: list[crash.Assessed] = []
    tried = 0
    for number, frame in enumerate(python[:MAX_PYTHON_FRAMES]):
        for slot in frame_slots(objects, frame):
            if slot.value in seen or slot.value % 8 or tried >= MAX_PYTHON_CANDIDATES:
                continue
            seen.add(slot.value)
            tried += 1
            candidate = crash.Candidate(slot.value, f"{slot.name} of {frame.function} (Python frame #{number})",
                                        typed=slot.live, role="python" if slot.live else crash.PYTHON_LEFTOVER)
            assessed = _assess(assessor, objects, candidate)
            if assessed is not None and assessed.verdict != liveness.ALIVE:  # live locals are no news
                found.append(assessed)
    return found


def _rerun(target: Target, address: int) -> str:
    """The batch command that watches ``address`` from the start, so the next crash names its type."""
    try:
        argv = target.program_arguments()
    except PylifeError:
        argv = None
    if argv:
        return rerun_command(target.debugger, list(argv), address)
    return rerun_command(target.debugger, [], address) + " <program and its arguments>"


def _recorded_cause(session: Session, address: int) -> str | None:
    """What the watch history of the freed ``address`` proves about its free (balance.borrowed_return)."""
    history = session.recorder.history_of(address)
    if history is None or history.freed_at is None:
        return None
    proof = borrowed_return(history)
    return proof[1] if proof is not None else None


def _watch_stop_kind(session: Session, message: str) -> tuple[str, str]:
    """pylife's own stop (a watchpoint hit it stopped at): the recorder's last anomaly explains it."""
    kinds = {ev.USE_AFTER_FREE: "use-after-free", ev.DECREF_AFTER_FREE: "over-decref", ev.NEGATIVE: "negative-refcount"}
    for history in session.recorder.histories.values():
        last = history.events[-1] if history.events else None
        if last is not None and last.message and last.message in message and last.kind in kinds:
            return kinds[last.kind], f"pylife stopped at watch event {last.seq}: {last.message}"
    return "unknown", f"pylife stopped the program: {message.removeprefix('pylife: ')}"


def _summary(signal: str | None, code: int | None, fault: int | None, function: str | None,
             fatal: crash.FatalError | None, kind: str, evidence: str, blame: dict[str, Any] | None,
             stack: list[dict[str, Any]], erased: int | None, rerun: str | None, held: str | None,
             recorded: str | None = None) -> str:
    """The headline; the objects follow once, in the report's `objects`."""
    lines = []
    where = f" in {function}" if function else ""
    if fatal is not None:
        origin = f" (raised by {fatal.origin})" if fatal.origin else ""
        lines.append(f"{signal or 'stopped'}{where}: fatal error{origin}: {fatal.message or fatal.function}")
    elif signal:
        if fault is not None and code == 128:
            access = ": general protection fault (non-canonical address; the faulting address is not reported)"
        elif fault is not None:
            access = f" accessing {fault:#x}"
        else:
            access = ""
        lines.append(f"{signal}{where}{access}")
    else:
        lines.append(f"no signal{where}")
    python = next((f for f in stack if f["kind"] == "python"), None)
    if python is not None:
        lines.append(f"Python: {frame_at(python['function'], python['file'], python['line'])}")
    lines.append(f"culprit: {describe(blame)}")
    lines.append(f"looks like {crash.EXPLANATIONS[kind]} [{kind}]: {evidence}")
    if held:
        lines.append(held)
    if recorded:
        lines.append(f"recorded history: {recorded}")
    if erased is not None:
        lines.append(f"the type of {erased:#x} is erased: PYTHONMALLOC=debug filled the freed block with 0xDD; "
                     f"to name it, rerun with a watch on it: {rerun}")
    return "\n".join(lines)
