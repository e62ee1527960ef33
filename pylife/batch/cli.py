"""`pylife run | core | triage`: the batch driver, run in the venv's Python outside any debugger."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import PylifeError, UserError
from ..record import store
from ..record.events import History
from ..record.watch import STOP_CHOICES
from . import cores, launch, summary
from . import report as reports

DESCRIPTION = ("Unattended pylife: trace a program under gdb or lldb (run), read a core (core), "
               "group many cores (triage); JSON and HTML reports.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pylife", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    run = sub.add_parser("run", help="run PROGRAM under a debugger with pylife watching; report at the end",
                         description="Run PROGRAM under gdb or lldb with pylife: arm the watches, let it run to "
                                     "its end, diagnose a crash, report every watched object.")
    run.add_argument("--debugger", choices=("gdb", "lldb"), default="gdb")
    run.add_argument("--watch-type", action="append", default=[], metavar="NAME",
                     help="watch every new instance of the type NAME from the start (repeatable)")
    run.add_argument("--watch-address", action="append", default=[], metavar="ADDR",
                     help="follow every object that lives at ADDR (repeatable); addresses repeat from run to run")
    run.add_argument("--watch-at", action="append", default=[], metavar="FUNC:EXPR",
                     help="when the C function FUNC is entered, watch the object EXPR names there "
                          "(a C expression, or py:EXPR for a Python expression)")
    run.add_argument("--max-objects", type=int, default=0, metavar="N", help="watch at most N objects per type")
    run.add_argument("--stop-on", choices=STOP_CHOICES, default="never",
                     help="end the run (and report) at the first such event (default: never, record and go on)")
    run.add_argument("--log", metavar="FILE", help="the JSONL history log (default: in the run's directory)")
    run.add_argument("--core-on-crash", metavar="DIR", help="write a core into DIR when the program crashes")
    run.add_argument("--timeout", type=float, metavar="S", help="stop the program after S seconds (the report is written)")
    run.add_argument("--error-exitcode", type=int, metavar="N",
                     help="exit N when pylife found a crash, a leak or a use after free")
    _outputs(run)
    run.add_argument("program", nargs=argparse.REMAINDER, metavar="-- PROGRAM [ARGS...]")

    core = sub.add_parser("core", help="diagnose a core: crash kind, objects and verdicts, every thread's stack")
    core.add_argument("core", metavar="CORE")
    core.add_argument("--exe", metavar="PATH", help="the program that dumped it (default: read from the core)")
    core.add_argument("--debugger", choices=("gdb", "lldb"), default="gdb")
    _outputs(core)

    triage = sub.add_parser("triage", help="group many cores by crash signature")
    triage.add_argument("cores", nargs="+", metavar="CORE_OR_DIR")
    triage.add_argument("--exe", metavar="PATH", help="the program that dumped them (default: read from each core)")
    triage.add_argument("--debugger", choices=("gdb", "lldb"), default="gdb")
    _outputs(triage)
    return parser


def _outputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="FILE", help="write the JSON report to FILE ('-': stdout)")
    parser.add_argument("--html", metavar="FILE", help="write the self-contained HTML report to FILE")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    output = launch.Output()
    try:
        if args.verb == "run":
            return run(args, output)
        if args.verb == "core":
            return core(args, output)
        return triage(args, output)
    except PylifeError as exc:
        output.say(str(exc))
        return 2


def _workspace(history_log: str | None) -> launch.Workspace:
    base = Path(os.environ.get("PYLIFE_LOG_DIR") or Path(tempfile.gettempdir()) / "pylife")
    base.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix=f"run-{time.strftime('%Y%m%d-%H%M%S')}-", dir=base))
    log = Path(history_log).resolve() if history_log else directory / "history.jsonl"
    if log.exists():
        log.unlink()  # one run, one log: `watch --log` appends
    return launch.Workspace(directory, log)


def _check_debugger(debugger: str) -> None:
    program = launch.DEBUGGER_PROGRAMS[debugger]
    if shutil.which(program) is None:
        raise UserError(f"{program} not found (scripts/setup.sh installs it)")


def _executable(name: str) -> str:
    path = shutil.which(name) if os.sep not in name else name
    if path is None or not os.path.isfile(path):
        raise UserError(f"{name}: no such program")
    with open(path, "rb") as handle:
        head = handle.read(128)
    if head.startswith(b"#!"):
        interpreter = head[2:].split(b"\n")[0].decode(errors="replace").strip()
        raise UserError(f"{path} is a script ({interpreter}), not a program the debugger can run: give its "
                        f"interpreter's path (a pyenv shim? $(pyenv which {os.path.basename(name)}))")
    if not head.startswith(b"\x7fELF"):
        raise UserError(f"{path} is not an executable the debugger can run (an ELF program such as python3)")
    return os.path.abspath(path)


def _stdin_path() -> str:
    path = f"/proc/{os.getpid()}/fd/0"
    return path if os.path.exists(path) else os.devnull


def run(args: argparse.Namespace, output: launch.Output) -> int:
    program = list(args.program)
    if program[:1] == ["--"]:
        program = program[1:]
    if not program:
        raise UserError("pylife run: no program (pylife run [options] -- PROGRAM [ARGS...])")
    for spec in args.watch_at:
        if ":" not in spec or not spec.partition(":")[0] or not spec.partition(":")[2]:
            raise UserError(f"--watch-at {spec!r}: expected C_FUNCTION:EXPR (EXPR a C expression or py:PYTHON)")
    if args.max_objects < 0:
        raise UserError("--max-objects must be >= 0")
    _check_debugger(args.debugger)
    executable = _executable(program[0])
    workspace = _workspace(args.log)
    stdout = launch.Passthrough(workspace.stdout, sys.stdout.fileno(), output)
    stderr = launch.Passthrough(workspace.stderr, sys.stderr.fileno(), output)
    env = dict(os.environ)
    hashseed_set = "PYTHONHASHSEED" not in env
    env.setdefault("PYTHONHASHSEED", "0")  # set hashes, and with them dict layouts and addresses, repeat
    config = {
        "mode": "run", "program": [executable, *program[1:]], "program_name": os.path.basename(executable),
        "cwd": os.getcwd(), "stdin": _stdin_path(), "stdout": str(workspace.stdout), "stderr": str(workspace.stderr),
        "watch_types": args.watch_type, "watch_addresses": args.watch_address, "watch_at": args.watch_at,
        "max_objects": args.max_objects, "stop_on": args.stop_on, "history_log": str(workspace.history_log),
        "events": str(workspace.events), "result": str(workspace.result), "stop_request": str(workspace.stop_request),
        "core_on_crash": os.path.abspath(args.core_on_crash) if args.core_on_crash else None,
    }
    workspace.config.write_text(json.dumps(config))
    stdout.start()
    stderr.start()
    try:
        outcome = launch.supervise(launch.debugger_argv(args.debugger, workspace.config), env, workspace, output,
                                   args.timeout)
    finally:
        for thread in (stdout, stderr):
            thread.finished.set()
        for thread in (stdout, stderr):
            thread.join(timeout=5)
    result, failures = _result(workspace, outcome, args.debugger)
    histories, allocations = load_log(workspace.history_log, failures)
    document = reports.build("run", program=program, debugger=args.debugger, result=result, histories=histories,
                             allocations=allocations, environment_=reports.environment(env, os.getcwd(), hashseed_set),
                             log=str(workspace.history_log), failures=failures, interrupted=outcome.interrupted,
                             watch_types=tuple(args.watch_type))
    if document["interrupted"] and document["exit"]["code"] is None and document["exit"]["signal"] is None:
        document["exit"]["signal"] = "SIGINT"
    _write(document, args, output)
    output.say(summary.text(document))
    return reports.exit_status(document, args.error_exitcode)


def _result(workspace: launch.Workspace, outcome: launch.Supervision, debugger: str) -> tuple[dict[str, Any] | None,
                                                                                            list[str]]:
    failures: list[str] = []
    try:
        result = json.loads(workspace.result.read_text())
    except (OSError, ValueError):
        result = None
        tail = _tail(workspace.transcript)
        failures.append(f"the {debugger} side wrote no result (debugger exit status {outcome.returncode}"
                        f"{', killed' if outcome.killed else ''}); its last output: {tail}")
    if result is None:
        steps = []
        try:
            for line in workspace.events.read_text().splitlines():
                record = json.loads(line)
                if record.get("record") == "step":
                    steps.append(record)
        except (OSError, ValueError):
            pass
        result = {"steps": steps}
    return result, failures


def _tail(path: Path, size: int = 600) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no transcript)"
    return " | ".join(line for line in text[-size:].splitlines() if line.strip()) or "(nothing)"


def load_log(path: Path, failures: list[str]) -> tuple[list[History], dict[int, list[list[dict[str, Any]] | None]]]:
    """Histories, and per address the allocation stacks of its watch records, in order (one per
    occupant: watching by type records them, other watches have None)."""
    if not path.exists():
        return [], {}
    try:
        histories = store.load(str(path))
    except PylifeError as exc:
        failures.append(str(exc))
        return [], {}
    allocations: dict[int, list[list[dict[str, Any]] | None]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("record") == "watch":
            # `watch --type` records {"allocation": {"stack": [...], ...}}; other watches have none.
            allocation = record.get("allocation")
            stack = allocation.get("stack") if isinstance(allocation, dict) else None
            allocations.setdefault(int(record["address"]), []).append(stack if isinstance(stack, list) else None)
    return histories, allocations


def _write(document: dict[str, Any], args: argparse.Namespace, output: launch.Output) -> None:
    from ..render import html

    text = json.dumps(document, indent=1)
    if args.json == "-":
        sys.stdout.write(text + "\n")
    elif args.json:
        _save(args.json, text, output)
    if args.html:
        page = html.triage_page(document) if document.get("kind") == "triage" else html.page(document)
        _save(args.html, page, output)


def _save(path: str, text: str, output: launch.Output) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    output.say(f"report: {path}")


def core(args: argparse.Namespace, output: launch.Output) -> int:
    _check_debugger(args.debugger)
    document = cores.analyze(args.core, args.exe, args.debugger)
    _write(document, args, output)
    output.say(summary.text(document))
    return 1 if document["failures"] else 0


def triage(args: argparse.Namespace, output: launch.Output) -> int:
    _check_debugger(args.debugger)
    paths = cores.find_cores(args.cores)
    if not paths:
        raise UserError("no core files found in " + ", ".join(args.cores))
    documents = [cores.analyze(str(path), args.exe, args.debugger) for path in paths]
    document = cores.triage(documents)
    _write(document, args, output)
    sys.stdout.write(summary.triage_table(document) + "\n")
    return 0
