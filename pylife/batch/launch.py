"""Start gdb or lldb with the batch agent and supervise it from outside the debugger.

The program's stdout and stderr are two FIFOs that the driver copies, byte
for byte, to its own: the program's output passes through untouched, and
the debugger's own chatter goes to a transcript file instead. pylife's lines
go to stderr, prefixed ``pylife:``; a status line is drawn only when stderr
is a terminal.

Stopping (Ctrl-C, --timeout): the driver writes the stop-request file and
sends SIGINT to the program; the agent sees that stop, writes its result and
kills the program. If the debugger does not finish within a grace period,
it is killed and the report is built from what was already written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..render.escape import escape

ROOT = Path(__file__).resolve().parents[2]
GDB_ENTRY = ROOT / "gdb_pylife.py"
LLDB_ENTRY = ROOT / "lldb_pylife.py"
DEBUGGER_PROGRAMS = {"gdb": "gdb", "lldb": "lldb-16"}
GRACE_SECONDS = 20.0  # after a stop request, before the debugger is killed
STATUS_PERIOD = 0.5


@dataclass
class Workspace:
    """Every file of one batch run (kept after the run: the report points at them)."""

    directory: Path
    history_log: Path

    @property
    def config(self) -> Path:
        return self.directory / "config.json"

    @property
    def events(self) -> Path:
        return self.directory / "events.jsonl"

    @property
    def result(self) -> Path:
        return self.directory / "result.json"

    @property
    def stop_request(self) -> Path:
        return self.directory / "stop-request"

    @property
    def transcript(self) -> Path:
        return self.directory / "debugger.log"

    @property
    def stdout(self) -> Path:
        return self.directory / "program.stdout"

    @property
    def stderr(self) -> Path:
        return self.directory / "program.stderr"


def debugger_argv(debugger: str, config: Path) -> list[str]:
    call = f"main({str(config)!r})"
    if debugger == "gdb":
        return ["gdb", "-nx", "-batch", "-ex", "set python print-stack full", "-ex", f"source {GDB_ENTRY}",
                "-ex", f"python import pylife.dbg.gdb_batch as _batch; _batch.{call}"]
    return [DEBUGGER_PROGRAMS["lldb"], "-b", "--no-lldbinit", "-o", f"command script import {LLDB_ENTRY}",
            "-o", f"script import pylife.dbg.lldb_batch as _batch; _batch.main(lldb.debugger, {str(config)!r})",
            "-k", "process kill"]


class Output:
    """pylife's own lines and the status line, on stderr, never mixed into a line of the program's."""

    def __init__(self, stream: IO[str] = sys.stderr) -> None:
        self.stream = stream
        self.lock = threading.Lock()
        self.tty = stream.isatty()
        self.status_shown = False

    def _clear(self) -> None:
        if self.status_shown:
            self.stream.write("\r\x1b[K")
            self.status_shown = False

    def say(self, text: str) -> None:
        with self.lock:
            self._clear()
            for line in text.splitlines():
                self.stream.write(f"pylife: {line}\n")
            self.stream.flush()

    def status(self, text: str) -> None:
        if not self.tty:
            return
        with self.lock:
            self.stream.write(f"\r\x1b[Kpylife: {text}")
            self.stream.flush()
            self.status_shown = True

    def done(self) -> None:
        with self.lock:
            self._clear()
            self.stream.flush()

    def program_bytes(self, fd: int, data: bytes) -> None:
        with self.lock:
            if self.tty:
                self._clear()
                self.stream.flush()
            os.write(fd, data)


class Passthrough(threading.Thread):
    """Copy one FIFO to one of our file descriptors until told to stop (then drain it)."""

    def __init__(self, fifo: Path, fd: int, output: Output) -> None:
        super().__init__(daemon=True)
        os.mkfifo(fifo)
        # Opened read-write: no EOF when the program closes it, and opening never blocks.
        self.read_fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        self.fd = fd
        self.output = output
        self.finished = threading.Event()

    def run(self) -> None:
        import select

        while True:
            ready, _, _ = select.select([self.read_fd], [], [], 0.1)
            if ready:
                self._drain()
            elif self.finished.is_set():
                self._drain()
                break
        os.close(self.read_fd)

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.read_fd, 65536)
            except BlockingIOError:
                return
            if not data:
                return
            try:
                self.output.program_bytes(self.fd, data)
            except OSError:
                return  # our own stdout is gone (a closed pipe): keep draining the FIFO


@dataclass
class Supervision:
    """What happened to the debugger process, as seen from outside."""

    returncode: int | None = None
    interrupted: str | None = None
    killed: bool = False
    messages: list[str] = field(default_factory=list)


class EventTail:
    """Follow the agent's progress file and the history log (for messages and the status line)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.offset = 0
        self.log_offset = 0
        self.pid: int | None = None
        self.events = 0
        self.objects = 0

    def poll(self, say: Callable[[str], None]) -> None:
        for record in self._new_records(self.workspace.events, "offset"):
            kind = record.get("record")
            if kind == "started":
                self.pid = int(record["pid"])
            elif kind == "step" and not record.get("ok"):
                say(escape(f"{record.get('step')} failed: {record.get('error')}"))
            elif kind == "stop" and record.get("message"):
                say(escape(str(record["message"]).removeprefix("pylife: ")))
            elif kind == "crash":
                say(f"the program stopped with {record.get('signal')}: diagnosing")
        for record in self._new_records(self.workspace.history_log, "log_offset"):
            if record.get("record") == "event":
                self.events += 1
            elif record.get("record") == "watch":
                self.objects += 1

    def _new_records(self, path: Path, attribute: str) -> list[dict[str, Any]]:
        try:
            with open(path, "rb") as handle:
                handle.seek(getattr(self, attribute))
                data = handle.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1  # a torn last line is read next time
        setattr(self, attribute, getattr(self, attribute) + end)
        records = []
        for line in data[:end].splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records


def supervise(argv: list[str], env: dict[str, str], workspace: Workspace, output: Output,
              timeout: float | None) -> Supervision:
    """Run the debugger to its end; Ctrl-C and the timeout become a stop request."""
    outcome = Supervision()
    tail = EventTail(workspace)
    requested: list[str] = []
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(_number: int, _frame: object) -> None:
        requested.append("interrupted (Ctrl-C)")

    signal.signal(signal.SIGINT, on_sigint)
    start = time.monotonic()
    try:
        with open(workspace.transcript, "wb") as transcript:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=transcript, stderr=subprocess.STDOUT,
                                       env=env, start_new_session=True)
            deadline: float | None = None
            signalled = False
            last_status = 0.0
            while process.poll() is None:
                time.sleep(0.05)
                tail.poll(output.say)
                now = time.monotonic()
                if timeout is not None and now - start > timeout and not requested:
                    requested.append(f"timeout after {timeout:g}s")
                if requested and outcome.interrupted is None:
                    outcome.interrupted = requested[0]
                    output.say(f"{requested[0]}: stopping the program, writing the report")
                    workspace.stop_request.write_text(requested[0])
                    deadline = now + GRACE_SECONDS
                if outcome.interrupted is not None and not signalled and tail.pid is not None:
                    # The program may not be launched yet: SIGINT as soon as its pid is known.
                    _signal(tail.pid, signal.SIGINT)
                    signalled = True
                if deadline is not None and (now > deadline or len(requested) > 1):
                    output.say("the debugger did not stop in time: killing it")
                    _kill_group(process)
                    _signal(tail.pid, signal.SIGKILL)
                    outcome.killed = True
                if now - last_status > STATUS_PERIOD:
                    last_status = now
                    output.status(f"{tail.events} events, {tail.objects} objects watched, {now - start:.1f}s")
            outcome.returncode = process.returncode
            tail.poll(output.say)
    finally:
        signal.signal(signal.SIGINT, previous)
        output.done()
    return outcome


def _signal(pid: int | None, number: int) -> None:
    if pid:
        try:
            os.kill(pid, number)
        except OSError:
            pass


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        pass
