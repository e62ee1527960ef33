"""Text rendering of watch/history reports."""

from __future__ import annotations

from typing import Any

from ..cpython.culprit import describe
from ..frame_text import frame_line, frame_where
from .escape import escape, shown
from .tables import key_value_table, table


def watch(data: dict[str, Any], color: bool) -> str:
    follow = "; following the address across frees and reuses" if data.get("follow") else ""
    lines = [f"pylife: watching {data['address']:#x} ({shown(data['type'])}, refcount {data['refcnt']}); "
             f"stop on {data['stop_on']}{follow}; hardware slots {data['slots_used']}/{data['slots_total']} used",
             f"pylife: history log: {data['log']}"]
    return "\n".join(lines)


def _type_watch_line(t: dict[str, Any]) -> str:
    types = ", ".join(f"{escape(x['name'])} at {x['address']:#x}" for x in t["types"]) or "no such type yet"
    limit = f" of at most {t['max']}" if t["max"] else ""
    line = (f"type {escape(t['name'])}: {t['state']} ({types}); new instances: {t['matched']} seen, "
            f"{t['watched']} watched{limit}, {t['skipped']} skipped (every hardware slot busy)")
    return line + (f"; last error: {escape(t['error'])}" if t.get("error") else "")


def watch_type(data: dict[str, Any], color: bool) -> str:
    t = data["type_watch"]
    when = ("each new instance is watched from its allocation" if t["state"] == "armed"
            else "pending: armed when the type is created (and the program runs)")
    return "\n".join([f"pylife: watching new instances of {escape(t['name'])}, stop on {t['stop_on']}; {when}",
                      f"pylife: {_type_watch_line(t)}", f"pylife: history log: {data['log']}"])


def unwatch(data: dict[str, Any], color: bool) -> str:
    if data.get("type_watch"):
        return f"pylife: stopped watching new instances: {_type_watch_line(data['type_watch'])}"
    removed = ", ".join(f"{a:#x}" for a in data["removed"]) or "nothing"
    return f"pylife: stopped watching {removed}; hardware slots {data['slots_used']}/{data['slots_total']} used"


def watches(data: dict[str, Any], color: bool) -> str:
    head = f"hardware slots: {data['slots_used']}/{data['slots_total']} used, {data['slots_total'] - data['slots_used']} free"
    rows = [[f"{w['address']:#x}", shown(w["type"]), w["refcnt"], w["phase"], w["events"], w["stop_on"],
             f"yes (occupant {w['occupancy']})" if w.get("follow") else "no"] for w in data["watches"]]
    body = (table(["address", "type", "refcnt", "phase", "events", "stop_on", "follow"], rows) if rows
            else "nothing is watched")
    types = "".join(f"\n{_type_watch_line(t)}" for t in data.get("type_watches", []))
    return f"{head}\n{body}{types}\nlog: {data['log']}"


def history(data: dict[str, Any], color: bool) -> str:
    if not data["objects"]:
        return "pylife: no history recorded (pylife watch ADDR, then continue)"
    out = []
    for h in data["objects"]:
        status = []
        if h["freed_at"] is not None:
            status.append(f"freed at event {h['freed_at']}")
        if h["closed"]:
            status.append(escape(h["closed"]))
        occupant = f" occupant {h['occupancy']}" if h.get("occupancy") else ""
        start = (f"allocated at event {h['allocated_at']}" if h.get("allocated_at") is not None
                 else f"initial refcount {h['initial']}")
        out.append(f"{h['address']:#x}{occupant} {shown(h['type'])}: {len(h['events'])} events"
                   f" ({start})" + (f"; {'; '.join(status)}" if status else ""))
        allocation = h.get("allocation")
        if allocation:
            where = escape(allocation.get("python") or "no Python frame")
            out.append(f"  allocated by {escape(allocation.get('function') or '?')} in {where} "
                       f"(thread {allocation.get('tid')}; {h.get('origin')})")
        rows = [[e["seq"], f"{e['new'] - e['old']:+d}" if abs(e["new"] - e["old"]) < 1 << 32 else "write",
                 e["new"] if abs(e["new"]) < 1 << 32 else f"{e['new']:#x}", e["kind"], escape(e["writer"] or "unknown"),
                 escape(describe(e.get("culprit"))), e["op"] or "", escape(e["python"] or "")] for e in h["events"]]
        if rows:
            # Column names are the event's JSON keys (Δ is new - old).
            out.append(table(["seq", "Δ", "new", "kind", "writer", "culprit", "op", "python"], rows))
    return "\n".join(out)


def event(data: dict[str, Any], color: bool) -> str:
    rows = [("object", f"{data['address']:#x} ({shown(data['type'])})"), ("event", f"{data['seq']} ({data['kind']})"),
            ("refcount", f"{data['old']} -> {data['new']}"), ("thread", str(data["tid"])),
            ("writer", escape(data["writer"] or "unknown")), ("culprit", escape(describe(data.get("culprit")))),
            ("op", data["op"] or "-"), ("Python", escape(data["python"] or "-"))]
    if data.get("message"):
        rows.append(("message", escape(data["message"])))
    stack = ["  " + frame_line(i, f, escape) for i, f in enumerate(data["stack"])]
    return key_value_table(rows) + "\nstack:\n" + "\n".join(stack)


def balance(data: dict[str, Any], color: bool) -> str:
    out = []
    for a in data["objects"]:
        out.append(f"{a['address']:#x} {shown(a['type'])}: balance by site")
        if a["leak_candidates"]:
            out.append("leak candidates (increments never released by the same site), most suspicious first:")
            rows = [[escape(s["function"]), escape(" <- ".join(s["callers"])), escape(frame_where(s["file"], s["line"])),
                     escape(describe(s.get("culprit"))), s["increments"], s["decrements"], s["unreleased"]]
                    for s in a["leak_candidates"]]
            out.append(table(["site", "writer chain", "where", "culprit", "+", "-", "unreleased"], rows))
        if a["overdecref_candidate"]:
            s = a["overdecref_candidate"]
            at = f" at {frame_where(s['file'], s['line'])}" if s["file"] else ""  # a C function named by its address: no line
            out.append(escape(f"over-decref candidate: {s['function']} ({' <- '.join(s['callers'])}){at}: "
                              f"{s['decrements']} decrements, {s['increments']} increments"
                              f" [culprit: {describe(s.get('culprit'))}]"))
        out += [f"note: {escape(n)}" for n in a["notes"]]
    return "\n".join(out) if out else "pylife: no history recorded"


def message(data: dict[str, Any], color: bool) -> str:
    return escape(data["message"])


def _object_name(o: dict[str, Any]) -> str:
    occupant = f" occupant {o['occupancy']}" if o.get("occupancy") else ""
    return f"{o['address']:#x}{occupant} {shown(o['type'])}"


def _where(site: dict[str, Any]) -> str:
    return frame_where(site["file"], site["line"])


def _chain(callers: list[str]) -> str:
    """Writer chain, writer first; long core chains keep their two ends."""
    shown_callers = callers if len(callers) <= 3 else [callers[0], "...", *callers[-2:]]
    return " <- ".join(shown_callers)


def leaks(data: dict[str, Any], color: bool) -> str:
    when = (f"at exit (exit status {data['exit_status']})" if data["exit_status"] is not None else "at exit") \
        if data["at_exit"] else "now"
    out = [f"pylife leaks {when}: {data['watched']} objects watched: {data['alive']} alive, {data['freed']} freed, "
           f"{len(data['uses_after_free'])} uses after free"]
    alive = [o for o in data["objects"] if o["status"] in ("alive", "unwatched")]
    if alive:
        out.append("still alive:")
    for o in alive:
        parts = [f"refcount {o['refcnt']}" if o["refcnt"] is not None else "refcount unknown"]
        if o["status"] == "unwatched":
            parts.append("unwatched by the user (its later changes were not recorded)")
        top = o["top_leak_candidate"]
        if top:
            parts.append(f"top leak candidate {shown(top['function'])} ({shown(_where(top))}): "
                         f"{top['unreleased']} unreleased")
        if o["held_before_watch"]:
            parts.append(f"{o['held_before_watch']} reference(s) held since before the watch was armed (no site recorded)")
        out.append(f"  {_object_name(o)}: " + "; ".join(parts))
    freed = [o for o in data["objects"] if o["status"] == "freed"]
    if freed:
        out.append("freed:")
    for o in freed:
        site = o["free_site"]
        where = (f" by {shown(site['writer'] or '?')}" + (f" in {shown(site['python'])}" if site["python"] else "")) \
            if site else ""
        at = f"at event {o['freed_at']}" if o["freed_at"] is not None else "(the free itself was not seen)"
        out.append(f"  {_object_name(o)}: freed {at}{where}" + (f"; {escape(o['closed'])}" if o["closed"] else ""))
    rows = [[_object_name(o), shown(s["function"]), shown(_chain(s["callers"])), shown(_where(s)), s["increments"],
             s["decrements"], s["unreleased"]] for o in alive for s in o["unreleased"]]
    if rows:
        out.append("unreleased references by site:")
        out.append(table(["object", "site", "writer chain", "where", "+", "-", "unreleased"], rows))
    if data["uses_after_free"]:
        out.append("uses after free:")
    for use in data["uses_after_free"]:
        out.append(f"  event {use['seq']}: {escape(use['message'] or use['kind'])}")
    out += [f"note: {escape(n)}" for n in data["notes"]]
    out += [f"watch --{_type_watch_line(t)}" for t in data.get("type_watches", [])]
    return "\n".join(out)


RENDERERS = {"watch": watch, "watch_type": watch_type, "unwatch": unwatch, "watches": watches, "history": history, "event": event,
             "balance": balance, "message": message, "leaks": leaks}
