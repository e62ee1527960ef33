"""A bare hardware watchpoint that counts value changes, in gdb or lldb (the floor pylife is held to).

Loaded inside the debugger by test_watch_count.py's driver commands:

    gdb:  python import sys; sys.path.insert(0, DIR); import bare_watch; bare_watch.gdb_watch(ADDR)
    lldb: script import sys; sys.path.insert(0, DIR); import bare_watch; bare_watch.lldb_watch(lldb.debugger, ADDR)
    then: ... bare_watch.write(PATH)

Each hit reads the 8 watched bytes and counts a hit whose word changed, then
continues (no prompt stop): no frames, no symbols, nothing else.
"""

from __future__ import annotations

import json
import struct
from typing import Any

_state: dict[str, Any] = {"address": 0, "last": None, "hits": 0, "changes": 0, "words": []}


def _count(word: int) -> None:
    _state["hits"] += 1
    if word != _state["last"]:
        _state["changes"] += 1
        _state["words"].append(word)
        _state["last"] = word


def gdb_watch(address: int) -> None:
    import gdb  # type: ignore[import-not-found]

    def read() -> int:
        return int(struct.unpack("<Q", bytes(gdb.selected_inferior().read_memory(address, 8)))[0])

    class Bare(gdb.Breakpoint):  # type: ignore[misc]
        def stop(self) -> bool:
            _count(read())
            return False

    _state["address"], _state["last"] = address, read()
    Bare(f"*(long *){address:#x}", gdb.BP_WATCHPOINT, gdb.WP_WRITE, internal=True)


def lldb_watch(debugger: Any, address: int) -> None:
    import lldb  # type: ignore[import-not-found]

    target = debugger.GetSelectedTarget()
    error = lldb.SBError()
    _state["address"] = address
    _state["last"] = target.GetProcess().ReadUnsignedFromMemory(address, 8, error)
    watchpoint = target.WatchAddress(address, 8, False, True, error)
    if not error.Success():
        raise RuntimeError(f"bare watchpoint: {error.GetCString()}")
    # An inline body that returns False continues without a prompt stop (design.md §3).
    debugger.HandleCommand(f'watchpoint command add -s python -o "import bare_watch; '
                           f'return bare_watch.lldb_hit(frame)" {watchpoint.GetID()}')


def lldb_hit(frame: Any) -> bool:
    import lldb  # type: ignore[import-not-found]

    error = lldb.SBError()
    _count(frame.GetThread().GetProcess().ReadUnsignedFromMemory(_state["address"], 8, error))
    return False


def write(path: str) -> None:
    with open(path, "w") as handle:
        json.dump({key: _state[key] for key in ("address", "hits", "changes", "words")}, handle)
