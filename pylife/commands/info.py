"""`pylife info ADDR`: type, refcount, size, GC state and a safe preview of one object."""

from __future__ import annotations

import argparse

from ..cpython import liveness
from ..cpython.gc import PERMANENT_GENERATION, gc_info
from ..cpython.objects import Budget, Objects, TypeInfo
from ..cpython.preview import preview
from ..cpython.runtime import Runtime
from ..errors import NotAnObject, PylifeError
from ..report import Report
from ..session import Session
from ..target import Memory
from .common import add_object_arguments, resolve_object

HELP = ("show type, refcount, size, GC state and value of the object at ADDR (an address or expression) "
        "or named by --py EXPR, "
        "and whether it is alive, freed or corrupt, with the allocator's evidence")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_object_arguments(parser)
    parser.add_argument("--depth", type=int, default=3, help="nesting depth of the preview (default 3)")
    parser.add_argument("--items", type=int, default=10, help="items shown per container (default 10)")
    parser.add_argument("--chars", type=int, default=80, help="characters shown per string (default 80)")


def run(session: Session, args: argparse.Namespace) -> Report:
    address = resolve_object(session, args)
    mem = session.memory()
    runtime = session.runtime(mem)
    objects = session.objects(mem)
    try:
        tp = objects.type_of(address)
    except NotAnObject as exc:
        # Not readable as an object: still say whether it is freed or corrupt
        # memory when the allocator gives evidence; otherwise the one-line error.
        verdict = _verdict(session, mem, runtime, objects, address, None, str(exc))
        if verdict is None or verdict.verdict not in (liveness.FREED, liveness.CORRUPT):
            if verdict is not None and verdict.allocator.get("region") in ("pymalloc", "malloc") and verdict.reasons:
                extra = verdict.reasons[-1]
                if extra not in str(exc) and str(exc) not in extra:
                    raise NotAnObject(f"{exc}; {extra}") from None
            raise
        data = {"error": str(exc), "address": address, **verdict.to_json()}
        return Report("info", data, warnings=list(runtime.layout.warnings))
    refcnt, immortal = objects.refcount(address)
    notes: list[str] = []
    try:
        size: int | None = objects.size(address, tp)
    except PylifeError as exc:
        size = None
        notes.append(f"size unknown: {exc}")
    is_gc = objects.is_gc(address, tp)
    try:
        gc = gc_info(mem, runtime, address, is_gc)
        if gc.note and is_gc:
            notes.append(gc.note)
        if gc.collecting:
            notes.append("a GC collection is in progress: generation lists are in flux")
        gc_data = {"tracked": gc.tracked, "generation": gc.generation}
    except PylifeError as exc:
        gc_data = {"tracked": None, "generation": None}
        notes.append(f"GC state unreadable: {exc}")
    if refcnt <= 0:
        notes.append(f"refcount {refcnt} is not positive: the object may be freed or being deallocated")
    if tp.kind == "list":
        try:
            count = objects.var_size(address)
            allocated = objects.mem.i64(address + runtime.layout["PyListObject.allocated"])
            if count < 0 or count > allocated:
                notes.append(f"list ob_size {count} exceeds allocated {allocated}: corrupt")
        except PylifeError:
            pass
    verdict = _verdict(session, mem, runtime, objects, address, tp, None)
    if verdict is not None and verdict.verdict == liveness.FREED:
        notes.append("freed: the refcount and value shown are what is left in its memory")
    budget = Budget(depth=max(0, args.depth), items=max(0, args.items), chars=max(0, args.chars))
    data = {
        "address": address,
        "type": tp.qualified,
        "type_address": tp.address,
        "refcnt": refcnt,
        "immortal": immortal,
        "size": size,
        "gc": gc_data,
        "preview": preview(objects, address, budget),
        "notes": notes,
        **(verdict.to_json() if verdict is not None else _NO_VERDICT),
    }
    report = Report("info", data, warnings=list(runtime.layout.warnings))
    if immortal and (verdict is None or verdict.verdict != liveness.FREED):
        report.data["notes"].append("immortal: CPython never changes this refcount (PEP 683)")
    if gc_data["generation"] == PERMANENT_GENERATION:
        report.data["notes"].append("in the permanent generation (gc.freeze)")
    return report


_NO_VERDICT: dict[str, object] = {"verdict": liveness.UNKNOWN, "reasons": [], "allocator": {}, "stale_type": None}


def _verdict(session: Session, mem: Memory, runtime: Runtime, objects: Objects, address: int, tp: TypeInfo | None,
             type_error: str | None) -> liveness.Verdict | None:
    """The liveness verdict, or None if working it out failed (never fails the command)."""
    try:
        return liveness.assess(session.target, mem, runtime, objects, address, tp, type_error)
    except PylifeError:
        return None
