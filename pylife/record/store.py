"""The JSONL log: one line per event (flushed at once) plus header/close records.

A crash of the inferior or of the debugger loses nothing already written.
Record shapes (one JSON object per line):
  {"record": "watch", "address", "occupancy", "type", "initial", "allocated_at"}
  {"record": "event", "address", "occupancy", ...Event fields}
  {"record": "close", "address", "occupancy", "freed_at", "closed"}
A followed address (watch --address) writes one "watch" record per occupant;
"occupancy" (absent in older logs: the address's latest history) says which
history an event or a close belongs to.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

from ..errors import UserError
from .events import ZERO, Event, History


class JsonlLog:
    def __init__(self, path: str) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def write(self, record: dict[str, Any]) -> None:
        self._write_line(json.dumps(record, separators=(",", ":")))

    def _write_line(self, line: str) -> None:
        try:
            if self._file is None:
                Path(os.path.dirname(os.path.abspath(self.path))).mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")  # kept open while recording
            self._file.write(line + "\n")
            self._file.flush()
        except OSError as exc:
            raise UserError(f"cannot write the history log {self.path}: {exc.strerror or exc}") from None

    def watch(self, history: History) -> None:
        record: dict[str, Any] = {"record": "watch", "address": history.address, "occupancy": history.occupancy,
                                  "type": history.type, "initial": history.initial, "allocated_at": history.allocated_at}
        if history.origin is not None:
            record.update(origin=history.origin, allocation=history.allocation)
        self.write(record)

    def event(self, history: History, event: Event, stack_text: str | None = None) -> None:
        """One event line; ``stack_text`` is the stack already encoded (hot path:
        the line is formatted by hand, json.dumps only for the free-text fields)."""
        if stack_text is None:
            self.write({"record": "event", **event.to_json(history.address), "occupancy": history.occupancy})
            return
        text = json.dumps
        self._write_line(
            f'{{"record":"event","address":{history.address},"occupancy":{history.occupancy},"seq":{event.seq},'
            f'"tid":{"null" if event.tid is None else event.tid},"old":{event.old},"new":{event.new},'
            f'"kind":{text(event.kind)},"writer":{text(event.writer)},"op":{text(event.op)},'
            f'"python":{text(event.python)},"message":{text(event.message)},"stack":{stack_text}'
            + ("" if event.release is None else f',"release":{text(event.release)}') + "}")

    def close(self, history: History) -> None:
        self.write({"record": "close", "address": history.address, "occupancy": history.occupancy,
                    "freed_at": history.freed_at, "closed": history.closed})


def load(path: str) -> list[History]:
    """Histories from a JSONL log; a torn last line (crash mid-write) is ignored.

    Each watch record starts a history (an address watched again, e.g. after
    `run` restarted the program, gets a new one, as in the session)."""
    histories: list[History] = []
    current: dict[int, History] = {}  # address -> its latest history
    by_key: dict[tuple[int, int], History] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"cannot read {path}: not a pylife history log (not UTF-8 text)") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            kind = record["record"]
            address = int(record["address"])
            if kind == "event" and not all(isinstance(record.get(k), int) for k in ("seq", "old", "new")):
                raise ValueError("an event needs integer seq, old and new")
        except (ValueError, KeyError, TypeError):
            if number == len(lines):
                break
            raise UserError(f"{path}:{number}: not a pylife history record") from None
        declared = record.get("occupancy")
        if kind == "watch" or address not in current:
            # Occupancies are unique per address; a log appended to by two sessions repeats them.
            taken = [h.occupancy for h in histories if h.address == address]
            occupancy = declared if isinstance(declared, int) and declared not in taken else max(taken, default=-1) + 1
            allocated = record.get("allocated_at")
            history = current[address] = History(address, str(record.get("type", "?")), initial=record.get("initial"),
                                                 occupancy=occupancy,
                                                 allocated_at=allocated if isinstance(allocated, int) else None,
                                                 origin=record.get("origin"), allocation=record.get("allocation"))
            if isinstance(declared, int):
                by_key[address, declared] = history
            histories.append(history)
        history = current[address]
        if isinstance(declared, int) and (address, declared) in by_key:
            history = by_key[address, declared]  # e.g. a stale write charged to a freed occupant
        if kind == "event":
            event = Event.from_json(record)
            history.events.append(event)
            if event.kind == ZERO:  # as the recorder does: known even if no close record was written
                history.freed_at = event.seq
        elif kind == "close":
            history.freed_at = record.get("freed_at")
            history.closed = record.get("closed")
    return histories
