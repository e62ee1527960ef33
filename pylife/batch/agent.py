"""The debugger side of `pylife run` / `pylife core`: one loop for gdb and lldb.

The batch driver (pylife.batch.cli, outside the debugger) starts gdb or lldb
with one command: import the adapter's Control (pylife.dbg.gdb_batch or
lldb_batch) and call :func:`run_agent` with the path of a JSON config. The
loop runs the same verbs as an interactive user (`pylife watch ... --json`,
`pylife diagnose --json`, ...) through :func:`pylife.commands.execute`, and
talks back through files only: a JSONL progress file (``events``), the
recorder's history log, and one JSON result written at the end, whatever
happened (a failed step, a crash, a stop request, a bug in pylife).

A stop request is a file the driver creates before it sends SIGINT to the
program: a SIGINT stop while that file exists ends the run; any other SIGINT
belongs to the program and is passed on.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..commands import CommandFailed, execute
from ..commands.common import resolve_address
from ..errors import PylifeError
from ..pyexpr import evaluate_py
from ..session import Session

# Signals that end the run with a crash report (a fatal error is a SIGABRT).
CRASH_SIGNALS = frozenset({"SIGSEGV", "SIGBUS", "SIGABRT", "SIGFPE", "SIGILL"})
MAX_STOPS = 100_000  # a program that stops forever (e.g. a SIGTRAP loop) still ends
MAX_CRASH_OBJECTS = 8
# Entered by Py_BytesMain and Py_Initialize* before the first object is allocated, in 3.8-3.13
# (Python/pylifecycle.c); exported, so found in stripped builds too.
RUNTIME_INIT = "_PyRuntime_Initialize"


@dataclass
class Stop:
    """Why the program stopped, as plain data."""

    kind: str  # "exited", "signal", "breakpoint", "watchpoint", "other", "gone"
    signal: str | None = None  # "SIGSEGV"
    signal_number: int | None = None
    exit_code: int | None = None
    breakpoint: int | None = None  # debugger breakpoint number / id
    description: str = ""


class Control(Protocol):
    """What the loop needs from the debugger beyond the Target: run control."""

    debugger: str

    def session(self) -> Session: ...
    def prepare(self) -> None: ...  # settings: ASLR off, pending breakpoints on, signal handling
    def launch(self, program: list[str], cwd: str, stdin: str, stdout: str, stderr: str) -> int: ...  # pid; at entry
    def resume(self, pass_signal: bool = False) -> Stop: ...
    def break_function(self, function: str) -> int: ...  # pending until the function's library loads
    def select_frame(self, function: str) -> bool: ...  # the innermost frame of FUNC (not an inlined callee)
    def watch_write_stop(self, address: int) -> int: ...  # a plain 8-byte write watchpoint that stops
    def delete_watch(self, number: int) -> None: ...
    def kill(self) -> None: ...
    def alive(self) -> bool: ...
    def save_core(self, path: str) -> None: ...  # raises PylifeError
    def open_core(self, core: str, executable: str | None) -> None: ...


@dataclass
class Progress:
    """The JSONL progress file: one record per step, flushed at once."""

    path: str
    steps: list[dict[str, Any]] = field(default_factory=list)

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def step(self, name: str, ok: bool, detail: Any = None, error: str | None = None) -> None:
        record = {"record": "step", "step": name, "ok": ok, "detail": detail, "error": error, "time": time.time()}
        self.steps.append(record)
        self.write(record)


class Agent:
    def __init__(self, control: Control, config: dict[str, Any]) -> None:
        self.control = control
        self.config = config
        self.progress = Progress(config["events"])
        self.pid: int | None = None
        self.at_hits: set[int] = set()  # --watch-at breakpoints that were reached
        self.runtime_breakpoint: int | None = None  # where --watch-address is armed when libpython loads late
        self.addresses_armed = False
        self.pending_addresses: dict[int, str] = {}  # plain write watchpoint -> followed address with no object yet
        self.address_errors: dict[str, str] = {}  # why `watch --address` could not arm yet
        self.result: dict[str, Any] = {"debugger": control.debugger, "mode": config["mode"], "exit": None,
                                       "crash": None, "bt": None, "verdicts": [], "stops": [], "interrupted": None,
                                       "core_file": None, "python": None, "steps": self.progress.steps,
                                       "stopped_by_pylife": None}

    # ---- verbs ----------------------------------------------------------------

    def verb(self, name: str, argv: list[str]) -> dict[str, Any] | None:
        """One `pylife ... --json` command; its document, or None (the failure is a step)."""
        try:
            output = execute(self.control.session(), [*argv, "--json"])
        except CommandFailed as exc:
            self.progress.step(name, False, {"command": argv}, str(exc))
            return None
        except Exception as exc:  # a bug in pylife: say it, keep going
            self.progress.step(name, False, {"command": argv}, f"internal error: {type(exc).__name__}: {exc}")
            return None
        lines = output.strip().splitlines()
        try:
            document = json.loads(lines[0]) if len(lines) == 1 else {"objects": [json.loads(line) for line in lines]}
        except ValueError:
            self.progress.step(name, False, {"command": argv}, f"not JSON: {output[:200]!r}")
            return None
        if isinstance(document, dict) and document.get("error"):
            self.progress.step(name, False, {"command": argv}, str(document["error"]))
            return None
        self.progress.step(name, True, {"command": argv})
        return document

    def python_version(self, final: bool = False) -> None:
        """Read once, at the first stop where it can be read (at the entry stop
        libpython may not be loaded yet); only the last try is a failed step."""
        if self.result["python"] is not None:
            return
        try:
            output = execute(self.control.session(), ["version", "--json"])
            document = json.loads(output.strip().splitlines()[0])
        except (CommandFailed, ValueError, IndexError) as exc:
            document = {"error": str(exc)}
        if "error" not in document:
            self.result["python"] = document
        elif final:
            self.progress.step("version", False, None, str(document["error"]))

    # ---- run --------------------------------------------------------------------

    def run(self) -> None:
        config = self.config
        control = self.control
        control.prepare()
        pid = self.pid = control.launch(config["program"], config["cwd"], config["stdin"], config["stdout"],
                                        config["stderr"])
        self.progress.write({"record": "started", "pid": pid})
        self.progress.step("launch", True, {"pid": pid, "program": config["program"]})
        watch_options = ["--stop-on", config["stop_on"], "--log", config["history_log"]]
        for name in config["watch_types"]:  # pending until the type exists (watch --type handles it)
            self.verb("watch-type", ["watch", "--type", name, *self._max(), *watch_options])
        self.python_version()
        if config["watch_addresses"] and self.result["python"] is None:
            # libpython is not mapped yet at the first instruction: arm when the runtime is being
            # initialised, before the first object exists.
            try:
                self.runtime_breakpoint = control.break_function(RUNTIME_INIT)
            except PylifeError as exc:
                self.progress.step("watch-address", False, {"function": RUNTIME_INIT}, str(exc))
        else:
            self.watch_addresses(watch_options)
        at_breakpoints: dict[int, tuple[str, str]] = {}
        for spec in config["watch_at"]:
            function, _, expression = spec.partition(":")
            try:
                at_breakpoints[control.break_function(function)] = (function, expression)
                self.progress.step("watch-at", True, {"function": function, "expression": expression})
            except PylifeError as exc:
                self.progress.step("watch-at", False, {"function": function}, str(exc))
        try:
            self.loop(at_breakpoints, watch_options)
        finally:
            for address in self.pending_addresses.values():
                self.progress.step("watch-address", False, {"address": address},
                                   f"no object ever lived at {address} (same program, environment and debugger as "
                                   f"the run that printed it?): {self.address_errors.get(address)}")
            if self.runtime_breakpoint is not None and not self.addresses_armed:
                self.progress.step("watch-address", False, {"function": RUNTIME_INIT},
                                   f"{RUNTIME_INIT} was never entered: the program did not start CPython")
            for number, (function, expression) in at_breakpoints.items():
                if number not in self.at_hits:  # a pending breakpoint that never resolved says nothing by itself
                    self.progress.step("watch-at", False, {"function": function, "expression": expression},
                                       f"{function} was never entered (no such function, or never called)")

    def watch_addresses(self, watch_options: list[str]) -> None:
        """Follow each address; where no object lives yet, a plain write watchpoint waits for the first one."""
        self.addresses_armed = True
        for address in self.config["watch_addresses"]:
            self.try_address(address, watch_options)

    def try_address(self, address: str, watch_options: list[str]) -> None:
        argv = ["watch", "--address", address, *watch_options]
        try:
            output = execute(self.control.session(), [*argv, "--json"])
            document = json.loads(output.strip().splitlines()[0])
        except (CommandFailed, ValueError, IndexError) as exc:
            document = {"error": str(exc)}
        if "error" not in document:
            self.progress.step("watch-address", True, {"command": argv})
            return
        self.address_errors[address] = str(document["error"])
        try:  # nothing there yet (the heap is not mapped, or the block is free): wait for a write
            self.pending_addresses[self.control.watch_write_stop(int(address, 0))] = address
        except (PylifeError, ValueError) as exc:
            self.progress.step("watch-address", False, {"command": argv}, str(exc))

    def address_written(self, number: int, watch_options: list[str]) -> None:
        """The first writes to a followed address: an object may have moved in; try again."""
        address = self.pending_addresses.pop(number)
        self.control.delete_watch(number)  # before pylife's own watch takes a hardware slot
        self.try_address(address, watch_options)

    def _max(self) -> list[str]:
        return ["--max", str(self.config["max_objects"])] if self.config.get("max_objects") else []

    def loop(self, at_breakpoints: dict[int, tuple[str, str]], watch_options: list[str]) -> None:
        control = self.control
        pass_signal = False
        for _ in range(MAX_STOPS):
            stop = control.resume(pass_signal)
            pass_signal = False
            if stop.kind in ("exited", "gone"):
                self.result["exit"] = {"code": stop.exit_code, "signal": stop.signal}
                self.progress.step("exit", True, self.result["exit"])
                return
            self.python_version()
            if stop.kind == "signal" and stop.signal == "SIGINT" and os.path.exists(self.config["stop_request"]):
                self.result["interrupted"] = Path(self.config["stop_request"]).read_text().strip() or "interrupted"
                self.progress.step("interrupt", True, {"reason": self.result["interrupted"]})
                return
            if stop.kind == "signal" and stop.signal in CRASH_SIGNALS:
                self.crash(stop)
                return
            if stop.kind == "watchpoint" and stop.breakpoint in self.pending_addresses:
                self.address_written(stop.breakpoint, watch_options)
                continue
            if stop.kind == "breakpoint" and stop.breakpoint == self.runtime_breakpoint:
                if not self.addresses_armed:  # entered again by Py_InitializeFromConfig: once is enough
                    self.watch_addresses(watch_options)
                continue
            if stop.kind == "breakpoint" and stop.breakpoint in at_breakpoints:
                self.at_hits.add(stop.breakpoint)
                self.watch_at(*at_breakpoints[stop.breakpoint], watch_options)
                continue
            message = control.session().stop_message()  # escaped: it names target functions and types
            if stop.kind == "watchpoint" or (stop.kind != "signal" and message):
                self.result["stops"].append({"kind": "pylife", "message": message})
                self.progress.write({"record": "stop", "message": message})
                control.session().recorder.last_stop_message = None
                if self.config["stop_on"] != "never":
                    self.result["stopped_by_pylife"] = message
                    self.progress.step("stop-on", True, {"message": message})
                    return
                continue
            # Not pylife's stop: the program's own SIGTRAP, a signal it handles, ...
            self.result["stops"].append({"kind": stop.kind, "signal": stop.signal, "description": stop.description})
            self.progress.write({"record": "stop", "message": f"{stop.description or stop.kind} (not pylife's): continuing"})
            pass_signal = stop.kind == "signal" and stop.signal not in ("SIGTRAP", None)
        self.progress.step("loop", False, None, f"more than {MAX_STOPS} stops: giving up")

    def watch_at(self, function: str, expression: str, watch_options: list[str]) -> None:
        """FUNC was entered: watch what EXPR names there, unless it is watched already (FUNC runs again)."""
        session = self.control.session()
        if not self.control.select_frame(function):
            self.progress.step("watch-at", False, {"function": function}, f"no frame of {function} at the breakpoint")
            return
        try:
            if expression.startswith("py:"):
                address = evaluate_py(session, expression[3:].strip())
            else:
                address = resolve_address(session.target, [expression])
        except PylifeError as exc:
            self.progress.step("watch-at", False, {"function": function, "expression": expression}, str(exc))
            return
        if address in session.recorder.watches:
            return
        argv = ["watch", hex(address)]
        document = self.verb("watch-at", [*argv, *watch_options])
        self.progress.write({"record": "watch-at", "function": function, "expression": expression,
                             "address": None if document is None else document.get("address")})

    def crash(self, stop: Stop) -> None:
        self.progress.write({"record": "crash", "signal": stop.signal})
        self.result["exit"] = {"code": None, "signal": stop.signal}
        diagnose = self.verb("diagnose", ["diagnose"])
        self.result["crash"] = diagnose
        self.result["bt"] = self.verb("bt", ["bt", "--all"])
        self.verdicts(diagnose)
        directory = self.config.get("core_on_crash")
        if directory:
            path = os.path.join(directory, f"core.{self.config['program_name']}.{self.pid}")
            try:
                os.makedirs(directory, exist_ok=True)
                self.control.save_core(path)
                self.result["core_file"] = path
                self.progress.step("core", True, {"path": path})
            except (PylifeError, OSError) as exc:
                self.progress.step("core", False, {"path": path}, str(exc))

    def verdicts(self, diagnose: dict[str, Any] | None) -> None:
        for item in (diagnose or {}).get("objects", [])[:MAX_CRASH_OBJECTS]:
            if item.get("verdict") != "ALIVE":
                continue  # a freed or corrupt object has its verdict in diagnose already; info refuses it
            document = self.verb("info", ["info", hex(int(item["address"]))])
            if document is not None:
                self.result["verdicts"].append(document)

    # ---- core -------------------------------------------------------------------

    def core(self) -> None:
        self.control.open_core(self.config["core"], self.config.get("exe"))
        self.progress.step("open-core", True, {"core": self.config["core"], "exe": self.config.get("exe")})
        self.python_version(final=True)
        diagnose = self.verb("diagnose", ["diagnose"])
        self.result["crash"] = diagnose
        if diagnose is not None:
            self.result["exit"] = {"code": None, "signal": diagnose.get("signal")}
        self.result["bt"] = self.verb("bt", ["bt", "--all"])
        self.verdicts(diagnose)

    def finish(self) -> None:
        with open(self.config["result"] + ".tmp", "w", encoding="utf-8") as handle:
            json.dump(self.result, handle)
        os.replace(self.config["result"] + ".tmp", self.config["result"])


def run_agent(make_control: Callable[[], Control], config_path: str) -> None:
    """Entry point called inside the debugger; never raises (a failure is a step)."""
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    agent: Agent | None = None
    try:
        agent = Agent(make_control(), config)
        if config["mode"] == "core":
            agent.core()
        else:
            agent.run()
    except Exception as exc:
        progress = agent.progress if agent is not None else Progress(config["events"])
        detail = traceback.format_exc(limit=6) if not isinstance(exc, PylifeError) else None
        progress.step("driver", False, detail, f"{type(exc).__name__}: {exc}" if detail else str(exc))
    finally:
        if agent is not None:
            try:
                if config["mode"] == "run":
                    agent.python_version(final=True)
                    if agent.control.alive():
                        agent.control.kill()
            except Exception as exc:
                agent.progress.step("kill", False, None, f"{type(exc).__name__}: {exc}")
            agent.finish()
