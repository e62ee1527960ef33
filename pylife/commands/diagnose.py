"""`pylife diagnose`: at a crash stop or on a core, what happened, to which object, and what bug it looks like."""

from __future__ import annotations

import argparse
from typing import Any

from ..cpython import crash, liveness
from ..cpython.frames import CodeCache, first_frame, walk
from ..cpython.objects import Objects
from ..cpython.runtime import Runtime
from ..cpython.stack import merge
from ..cpython.threads import match_os_threads, python_threads
from ..errors import PylifeError
from ..report import Report
from ..session import Session
from ..target import Memory, NativeFrame, StopInfo

HELP = "after a crash (SIGSEGV, SIGBUS, SIGABRT) or on a core: the signal, the objects involved and their verdicts, the kind of bug"
MAX_OBJECTS = 8
MAX_CANDIDATES = 40
MAX_NATIVE = 256


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=16, help="C frames whose arguments are checked (default 16)")
    parser.add_argument("--stack", type=int, default=30, help="frames of the merged stack shown (default 30)")


def run(session: Session, args: argparse.Namespace) -> Report:
    target = session.target
    mem = session.memory()
    runtime = session.runtime(mem)
    objects = session.objects(mem)
    notes: list[str] = []
    stop: StopInfo | None = None
    try:
        stop = target.stop_info(max(1, args.frames))
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
    signal = stop.signal if stop is not None else None
    code = stop.code if stop is not None else None
    fault = stop.fault_address if stop is not None else None
    kind, evidence = crash.classify(signal, code, fault, fatal, assessed, native, stop)
    severity = {"FREED": 0, "CORRUPT": 0, "ALIVE": 1}
    shown = sorted(assessed, key=lambda a: severity.get(a.verdict, 2))[:MAX_OBJECTS]
    stack = _stack(session, mem, objects, runtime, tid, native, notes)[: max(0, args.stack)]
    function = native[0].function if native else None
    data: dict[str, Any] = {
        "signal": signal,
        "kind": kind,
        "summary": _summary(signal, code, fault, function, fatal, kind, evidence, shown, stack),
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
    if not candidate.typed and (verdict.verdict != liveness.ALIVE or verdict.allocator.get("region") == "static"):
        return None  # only objects that are there, and not the never-freed static ones, from untyped sources
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


def _stack(session: Session, mem: Memory, objects: Objects, runtime: Runtime, tid: int | None,
           native: list[NativeFrame], notes: list[str]) -> list[dict[str, Any]]:
    python = []
    try:
        threads = match_os_threads(python_threads(mem, runtime), session.target.threads(), session.target.thread_pointer)
        thread = threads.get(tid) if tid is not None else None
        if thread is not None:
            python = list(walk(mem, objects, CodeCache(objects), first_frame(mem, objects, thread.tstate)))
    except PylifeError as exc:
        notes.append(f"Python frames unreadable: {exc}")
    return [frame.to_json() for frame in merge(native, python, "merged")]


def _summary(signal: str | None, code: int | None, fault: int | None, function: str | None,
             fatal: crash.FatalError | None, kind: str, evidence: str, shown: list[crash.Assessed],
             stack: list[dict[str, Any]]) -> str:
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
    for item in shown[:3]:
        was = f", was {item.type}" if item.verdict == "FREED" and item.type else (f" {item.type}" if item.type else "")
        why = f": {item.reasons[-1]}" if item.reasons else ""
        lines.append(f"object {item.candidate.address:#x} ({item.candidate.source}): {item.verdict}{was}{why}")
    python = next((f for f in stack if f["kind"] == "python"), None)
    if python is not None:
        lines.append(f"Python: {python['function']} at {python['file']}:{python['line']}")
    lines.append(f"looks like {crash.EXPLANATIONS[kind]} [{kind}]: {evidence}")
    return "\n".join(lines)
