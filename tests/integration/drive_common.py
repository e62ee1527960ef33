"""Shared by drive_gdb.py and drive_lldb.py, which run *inside* the debugger.

The spec (a JSON file named by $PYLIFE_DRIVE_SPEC) holds:
  truth:    path of the fixture's truth file, or null
  commands: [[label, template], ...]; ``{name}`` in a template becomes the hex
            address of the fixture object ``name`` (or of ``bytes_payload``)
  results:  path of the JSON file to write: [{label, command, output, error}]
The results file is rewritten after every command, so a debugger crash loses
nothing already run.
"""

from __future__ import annotations

import json
import os
import re
import traceback
from collections.abc import Callable
from typing import Any

Executor = Callable[[str], "tuple[str, str | None]"]
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def load_truth(text: str) -> dict[str, Any]:
    """A truth file: one JSON object, or JSON lines merged in order (scenario logs)."""
    try:
        data = json.loads(text)
    except ValueError:
        data = {}
        for line in text.splitlines():
            if line.strip():
                data.update(json.loads(line))
    return data if isinstance(data, dict) else {}


def _addresses(truth_path: str | None) -> dict[str, str]:
    if not truth_path or not os.path.exists(truth_path):
        return {}
    with open(truth_path) as handle:
        truth = load_truth(handle.read())
    addresses = {name: hex(obj["address"]) for name, obj in truth.get("objects", {}).items()}
    for name in ("bytes_payload", "zeros_payload", "victim", "leaked"):  # objects fixture; buggy scenarios
        if isinstance(truth.get(name), int):
            addresses[name] = hex(truth[name])
    pid = truth.get("python", {}).get("pid") if isinstance(truth.get("python"), dict) else None
    if isinstance(pid, int):  # the main thread's id, as `pylife bt` numbers threads
        addresses["pid"] = str(pid)
    return addresses


def _write(path: str, records: list[dict[str, Any]]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(records, handle)
    os.replace(tmp, path)


def run(execute: Executor) -> None:
    with open(os.environ["PYLIFE_DRIVE_SPEC"]) as handle:
        spec = json.load(handle)
    records: list[dict[str, Any]] = []
    try:
        addresses = _addresses(spec.get("truth"))
    except Exception:  # a broken truth file must still give a results file
        addresses = {}
        records.append({"label": "driver", "command": "", "output": "", "error": traceback.format_exc()})
    for label, template in spec["commands"]:
        missing = [name for name in _PLACEHOLDER.findall(template) if name not in addresses]
        if missing:
            records.append({"label": label, "command": template, "output": "",
                            "error": f"driver: no address for {', '.join(missing)}"})
            continue
        command = _PLACEHOLDER.sub(lambda m: addresses[m.group(1)], template)
        try:
            output, error = execute(command)
        except Exception as exc:  # the driver itself failed, not pylife
            output, error = "", f"driver: {type(exc).__name__}: {exc}"
        records.append({"label": label, "command": command, "output": output, "error": error})
        _write(spec["results"], records)
    _write(spec["results"], records)
