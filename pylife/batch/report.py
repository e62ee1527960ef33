"""The batch report: one versioned JSON document built from the run's files.

Inputs are plain data: the agent's result (exit, diagnose, bt, steps), the
recorder's JSONL history log, and what the driver saw from outside. It is
built outside the debugger, so a debugger that died still leaves a report
of everything already written. The schema is described in README.md (Batch).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from ..record import events as ev
from ..record.balance import analyze, site_of
from ..record.events import History

SCHEMA_VERSION = 1
# Environment variables that change what the program does or where its objects land.
RECORDED_VARIABLES = ("PYTHONHASHSEED", "PYTHONMALLOC", "PYTHONPATH", "PYTHONHOME", "PYTHONDEVMODE",
                      "PYTHONTRACEMALLOC", "PYTHONOPTIMIZE", "PYTHONUNBUFFERED", "LD_PRELOAD", "LD_LIBRARY_PATH",
                      "MALLOC_PERTURB_", "MALLOC_CHECK_", "GLIBC_TUNABLES")
# Verdicts of a crash object that a recorded free can explain.
DEAD_VERDICTS = ("FREED", "CORRUPT")


def environment(env: dict[str, str], cwd: str, hashseed_set_by_pylife: bool) -> dict[str, Any]:
    return {
        "aslr": "off",
        "cwd": cwd,
        "hashseed_set_by_pylife": hashseed_set_by_pylife,
        "variables": {name: env[name] for name in RECORDED_VARIABLES if name in env},
        "size": sum(len(k) + len(v) + 2 for k, v in env.items()),  # moves the heap when it changes
    }


def free_site(history: History) -> dict[str, Any] | None:
    """Where the count reached zero: the writer and its site (the first frame outside the core)."""
    zero = next((e for e in history.events if e.kind == ev.ZERO), None)
    if zero is None:
        return None
    function, file, line, _chain, _in_core = site_of(zero.stack)
    return {"seq": zero.seq, "writer": zero.writer, "function": function, "file": file, "line": line,
            "python": zero.python}


def object_entry(history: History, allocated: list[dict[str, Any]] | None, exited: bool,
                 used_after_free: bool = False) -> dict[str, Any]:
    balance = analyze(history)
    over = balance["overdecref_candidate"]
    notes = list(balance["notes"])
    if over is None and used_after_free and history.freed_at is not None:
        # The crash is the use after the free the balance could not see: charge the free.
        over = analyze_with_use(history)
        notes = [n for n in notes if "may be legitimate" not in n]
        notes.append(f"The object was freed at event {history.freed_at}, then the crash used it: the free was early.")
    freed = history.freed_at is not None
    final = history.events[-1].new if history.events else history.initial
    return {
        "address": history.address,
        "type": history.type,
        "allocated": allocated,
        "events": len(history.events),
        "freed": freed,
        "free_site": free_site(history),
        "foreign": history.foreign,
        "leaked": exited and not freed and not history.foreign,
        "final_refcnt": None if freed or history.foreign else final,
        "initial_refcnt": history.initial,
        "closed": history.closed,
        "balance": {"leak_candidates": balance["leak_candidates"], "over_decref_candidate": over,
                    "notes": notes},
        "uses_after_free": [e.seq for e in history.events if e.kind in (ev.USE_AFTER_FREE, ev.DECREF_AFTER_FREE)],
        "history": [e.to_json() for e in history.events],
    }


def analyze_with_use(history: History) -> dict[str, Any] | None:
    """The over-decref candidate when the use after the free was the crash, not a recorded write."""
    marker = ev.Event(history.events[-1].seq + 1 if history.events else 1, None, 0, 0, ev.DECREF_AFTER_FREE,
                      None, None, None)
    copy = History(history.address, history.type, [*history.events, marker], history.freed_at,
                   history.closed, history.initial)
    return analyze(copy)["overdecref_candidate"]


def crash_addresses(crash: dict[str, Any]) -> list[tuple[int, str | None, str]]:
    """(address, stale type, verdict) of the crash's dead objects, most telling first."""
    return [(int(o["address"]), o.get("type"), o["verdict"]) for o in crash.get("objects", [])
            if o.get("verdict") in DEAD_VERDICTS]


def find_victim(crash: dict[str, Any], histories: list[History]) -> History | None:
    """The recorded history that explains the crash: a freed watched object the crash touched."""
    fault = crash.get("fault_address")
    for address, _type, _verdict in crash_addresses(crash):
        found = [h for h in histories if h.address == address]
        if found:
            return next((h for h in reversed(found) if h.freed_at is not None), found[-1])
    if isinstance(fault, int):
        for history in histories:
            if history.freed_at is not None and 0 <= fault - history.address < 64:
                return history
    return None


# A shell redirection word: `<`, `>`, `>>`, `2>`, `&>`, `2>&1`, `<>`, `>|`, alone (its
# target is the next word) or glued to its target (`>out`, `2>/dev/null`).
_REDIRECTION = re.compile(r"^\d*(?:<>|<|>>|>\||>&|>|&>)(?P<target>.*)$")


def command_words(command_line: str) -> list[str]:
    """A shell command line's words without its redirections.

    gdb starts the program through the shell and shows `run`'s redirections among
    the arguments (`show args`: `app.py < in > out`); a rerun through `pylife run`
    gives the program pylife's own streams, so they are left out. A truncated
    line (a core's 80-character command line) may hold an unbalanced quote: then
    it is split on white space.
    """
    try:
        words = shlex.split(command_line)
    except ValueError:
        words = command_line.split()
    kept: list[str] = []
    skip_target = False
    for word in words:
        if skip_target:
            skip_target = False
            continue
        match = _REDIRECTION.match(word)
        if match:
            skip_target = not match.group("target")
            continue
        kept.append(word)
    return kept


def rerun_command(debugger: str, program: list[str], address: int) -> str:
    return shlex.join(["pylife", "run", "--debugger", debugger, "--watch-address", hex(address), "--", *program])


def build(kind: str, *, program: list[str] | None, debugger: str, result: dict[str, Any] | None,
          histories: list[History], allocations: dict[int, list[list[dict[str, Any]] | None]], environment_: dict[str, Any] | None,
          log: str | None, failures: list[str], interrupted: str | None, core: str | None = None,
          watch_types: tuple[str, ...] = ()) -> dict[str, Any]:
    result = result or {}
    exit_ = result.get("exit") or {"code": None, "signal": None}
    exited = kind == "run" and exit_.get("code") is not None and not result.get("crash")
    crash = result.get("crash")
    victim_history = find_victim(crash, histories) if crash else None
    queues = {address: list(stacks) for address, stacks in allocations.items()}
    objects = [object_entry(h, queues[h.address].pop(0) if queues.get(h.address) else None, exited,
                            used_after_free=h is victim_history) for h in histories]
    crash_section = None
    if crash is not None:
        victim = None
        if victim_history is not None:
            entry = objects[histories.index(victim_history)]
            victim = {"address": entry["address"], "type": entry["type"], "allocated": entry["allocated"],
                      "free_site": entry["free_site"], "over_decref_candidate": entry["balance"]["over_decref_candidate"],
                      "object": histories.index(victim_history)}
        rerun = None
        dead = crash_addresses(crash)
        if victim is None and dead and program:
            rerun = rerun_command(debugger, program, dead[0][0])
        elif victim is None:
            rerun = crash.get("rerun")  # diagnose's own suggestion, if it made one
        crash_section = {**crash, "victim": victim, "rerun": rerun, "verdicts": result.get("verdicts", []),
                         "bt": result.get("bt")}
    steps = result.get("steps", [])
    failed = [f"{s['step']}: {s['error']}" for s in steps if not s.get("ok")] + failures
    for name in watch_types:
        if not any(o["type"] == name or o["type"].rsplit(".", 1)[-1] == name for o in objects):
            failed.append(f"watch-type: no instance of {name} was watched (is the name right? is one ever made?)")
    uses = [{"address": o["address"], "seq": seq} for o in objects for seq in o["uses_after_free"]]
    return {
        "version": SCHEMA_VERSION,
        "kind": kind,
        "program": program,
        "core": core,
        "debugger": debugger,
        "python": (result.get("python") or {}).get("version"),
        "environment": environment_,
        "exit": {"code": exit_.get("code"), "signal": exit_.get("signal")},
        "interrupted": interrupted or result.get("interrupted"),
        "stopped_by_pylife": result.get("stopped_by_pylife"),
        "crash": crash_section,
        "objects": objects,
        "findings": {"crash": crash is not None and kind == "run", "leaks": sum(o["leaked"] for o in objects),
                     "uses_after_free": len(uses)},
        "stops": result.get("stops", []),
        "failures": failed,
        "core_file": result.get("core_file"),
        "log": log,
    }


def exit_status(report: dict[str, Any], error_exitcode: int | None) -> int:
    """The program's own status, 128+N for signal N; --error-exitcode when pylife found a bug."""
    findings = report["findings"]
    if error_exitcode is not None and (findings["crash"] or findings["leaks"] or findings["uses_after_free"]):
        return error_exitcode
    exit_ = report["exit"]
    if exit_["code"] is not None:
        return int(exit_["code"]) & 0xFF
    signal = exit_.get("signal")
    number = SIGNAL_NUMBERS.get(signal or "")
    if number is not None:
        return 128 + number
    return 1 if report["failures"] or report["interrupted"] else 0


SIGNAL_NUMBERS = {"SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGTRAP": 5, "SIGABRT": 6, "SIGBUS": 7,
                  "SIGFPE": 8, "SIGKILL": 9, "SIGSEGV": 11, "SIGPIPE": 13, "SIGALRM": 14, "SIGTERM": 15}
