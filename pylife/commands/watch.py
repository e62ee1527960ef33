"""`pylife watch`, `pylife unwatch`, `pylife watches`: hardware watchpoints on ob_refcnt."""

from __future__ import annotations

import argparse

from ..errors import UserError
from ..record.watch import HARDWARE_SLOTS, STOP_CHOICES, WatchOptions
from ..report import Report
from ..session import Session
from .common import add_object_arguments, has_object, resolve_address, resolve_object

HELP = "record every change of an object's refcount (hardware watchpoint; the program keeps running)"
UNWATCH_HELP = "stop watching an object (its history is kept)"
WATCHES_HELP = "list watched objects and the hardware slots used"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_object_arguments(parser)
    parser.add_argument("--address", dest="follow_address", metavar="ADDR",
                        help="follow this address across frees and reuses: every object that lives there gets its "
                             "own history, and a write through a stale pointer after a reuse is a use after free")
    parser.add_argument("--follow", action="store_true", help="with ADDR: the same as --address ADDR")
    parser.add_argument("--type", metavar="NAME", dest="type_name",
                        help="watch every new instance of type NAME (Victim, app.Victim, buggy.Thing) from its "
                             "allocation; before `run` or at any stop; pending until the type exists")
    parser.add_argument("--max", type=int, default=0, metavar="N",
                        help="with --type: stop watching after N instances in all (0: no limit)")
    parser.add_argument("--stop-on", choices=STOP_CHOICES, default="anomaly",
                        help="when to stop at the prompt (default: anomaly = negative count, use after free)")
    parser.add_argument("--max-events", type=int, default=0, help="stop after N events for this object (0: no limit)")
    parser.add_argument("--depth", type=int, default=16, help="C frames captured per event (default 16)")
    parser.add_argument("--log", metavar="FILE", help="append the history to FILE (JSONL) instead of the default log")


def run(session: Session, args: argparse.Namespace) -> Report:
    if args.max_events < 0 or args.depth < 1:
        raise UserError("--max-events must be >= 0 and --depth >= 1")
    if args.max < 0:
        raise UserError("--max must be >= 0")
    if args.type_name and (has_object(args) or args.follow_address is not None):
        raise UserError("give ADDR, --py EXPR or --type NAME (one of them)")
    session.apply_pending()
    if args.type_name:
        recorder = session.recorder
        if args.log:
            recorder.set_log(args.log)
        options = WatchOptions(stop_on=args.stop_on, max_events=args.max_events, depth=args.depth)
        type_watch = session.type_watcher.add(session, args.type_name, args.max, options)
        data = {"type_watch": type_watch.to_json(), "slots_used": slots_used(session), "slots_total": HARDWARE_SLOTS,
                "log": recorder.log.path}
        return Report("watch_type", data)
    if args.follow_address is not None:
        if has_object(args):
            raise UserError("give the address once: pylife watch --address ADDR (or pylife watch ADDR --follow)")
        address = resolve_address(session.target, [args.follow_address])
    else:
        address = resolve_object(session, args)
    recorder = session.recorder
    if args.log:
        recorder.set_log(args.log)
    follow = args.follow or args.follow_address is not None
    options = WatchOptions(stop_on=args.stop_on, max_events=args.max_events, depth=args.depth, follow=follow)
    watch, warnings = recorder.watch(session, address, options, session.target.watch_write)
    data = {
        "address": address,
        "type": watch.history.type,
        "refcnt": watch.last,
        "stop_on": options.stop_on,
        "follow": follow,
        "occupancy": watch.history.occupancy,
        "slots_used": slots_used(session),
        "slots_total": HARDWARE_SLOTS,
        "log": recorder.log.path,
        "warnings": warnings,
    }
    return Report("watch", data, warnings=warnings)


def slots_used(session: Session) -> int:
    """Debug registers taken: pylife's watches and the user's own hardware watchpoints."""
    return session.recorder.slots_used() + session.target.other_hardware_watchpoints()


def add_unwatch_arguments(parser: argparse.ArgumentParser) -> None:
    add_object_arguments(parser)
    parser.add_argument("--type", metavar="NAME", dest="type_name", help="stop watching new instances of NAME")
    parser.add_argument("--all", action="store_true", help="stop watching everything")


def run_unwatch(session: Session, args: argparse.Namespace) -> Report:
    recorder = session.recorder
    if args.type_name:
        type_watch = session.type_watcher.remove(session, args.type_name)
        return Report("unwatch", {"removed": [], "type_watch": type_watch.to_json(), "slots_used": slots_used(session),
                                  "slots_total": HARDWARE_SLOTS})
    if args.all:
        for name in list(session.type_watcher.watches):
            session.type_watcher.remove(session, name)
        addresses = list(recorder.watches)
    elif has_object(args):
        addresses = [resolve_object(session, args)]
    else:
        raise UserError("give an address, --py EXPR or --all")
    for address in addresses:
        watch = recorder.unwatch(address)
        for handle in watch.handles():
            session.target.remove(handle)
    session.apply_pending()
    return Report("unwatch", {"removed": addresses, "slots_used": slots_used(session), "slots_total": HARDWARE_SLOTS})


def add_watches_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run_watches(session: Session, args: argparse.Namespace) -> Report:
    session.apply_pending()
    recorder = session.recorder
    rows = [{"address": a, "type": w.history.type, "refcnt": w.last, "phase": w.phase, "events": len(w.history.events),
             "stop_on": w.options.stop_on, "follow": w.options.follow, "occupancy": w.history.occupancy,
             "slots": w.slots}
            for a, w in recorder.watches.items()]
    return Report("watches", {"watches": rows, "slots_used": slots_used(session), "slots_total": HARDWARE_SLOTS,
                              "type_watches": session.type_watcher.status(), "log": recorder.log.path})
