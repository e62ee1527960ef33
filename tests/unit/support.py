"""Shared helpers for the unit tests: sessions, previews and `pylife info --json` over a FakePython."""

from __future__ import annotations

import json
from typing import Any

from pylife.commands import execute
from pylife.cpython.objects import Budget, Objects
from pylife.cpython.preview import preview
from pylife.session import Session

from .builders import FakePython

VERDICT_KEYS = {"verdict", "reasons", "allocator", "stale_type"}
INFO_KEYS = {"address", "type", "type_address", "refcnt", "immortal", "size", "gc", "preview", "notes"} | VERDICT_KEYS
# Not readable as an object, but freed or corrupt by the allocator's evidence.
INFO_VERDICT_KEYS = {"error", "address"} | VERDICT_KEYS


def session_of(py: FakePython) -> Session:
    return Session(py.target)


def objects_of(py: FakePython) -> Objects:
    session = session_of(py)
    return session.objects(session.memory())


def preview_of(py: FakePython, address: int, **budget: int) -> str:
    return preview(objects_of(py), address, Budget(**budget))


def run_json(py: FakePython, argv: list[str], session: Session | None = None) -> dict[str, Any]:
    """Run a `pylife ... --json` command; it must print exactly one line of JSON."""
    output = execute(session or session_of(py), [*argv, "--json"])
    assert output.endswith("\n") and output.count("\n") == 1, output
    data = json.loads(output)
    assert isinstance(data, dict)
    return data


def info_json(py: FakePython, address: int, *extra: str, session: Session | None = None) -> dict[str, Any]:
    """`pylife info ADDR --json`: the info keys, a single {"error": ...}, or an error with a verdict."""
    data = run_json(py, ["info", hex(address), *extra], session)
    if "error" in data:
        assert set(data) in ({"error"}, INFO_VERDICT_KEYS), data
        assert isinstance(data["error"], str) and "\n" not in data["error"]
    else:
        assert set(data) == INFO_KEYS, data
    return data
