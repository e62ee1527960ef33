"""Who still points at a freed object: a bounded scan of the GC-tracked containers.

An object freed while a container still holds a pointer to it is the mark of
a missing reference (an extra Py_DECREF, a borrowed reference returned as
new): "freed while dict 0x... (key 'db') still points to it". The scan walks
the cyclic GC's generation lists (pycore_gc.h: every tracked container -- list,
tuple, dict, set, instances with their dicts and slots, cells, functions,
frame objects up to 3.10 -- is on one of them) and reads each container's
slots in bulk: the item array of a list, the inline items of a tuple, the
entries of a dict, the table of a set, and for any other type the object's
own memory (slots, members, 3.13 inline values). Untracked containers hold
only atomic values, never a GC object, so they are not looked at.
Bounded in objects and in time: a partial scan says so.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field

from ..errors import PylifeError, UnreadableMemory
from ..target import Memory
from .gc import PERMANENT_GENERATION, gc_state_addresses, generation_heads
from .objects import Objects, TypeInfo
from .runtime import Runtime

MAX_OBJECTS = 500_000
MAX_SECONDS = 2.0
MAX_ITEMS = 100_000  # slots read per container
MAX_BODY = 4096  # bytes of a generic object searched for the pointer
_MASK = ~3  # _gc_next's low bits are flags


@dataclass
class Referrers:
    found: list[str] = field(default_factory=list)  # "dict 0x... (key 'db')"
    scanned: int = 0
    complete: bool = True
    note: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"found": list(self.found), "scanned": self.scanned, "complete": self.complete, "note": self.note}

    def sentence(self, address: int) -> str | None:
        """One line: what still points at ``address``, or None."""
        if not self.found:
            return None
        more = f" (and {len(self.found) - 3} more)" if len(self.found) > 3 else ""
        return f"freed while {', '.join(self.found[:3])}{more} still point{'s' if len(self.found) == 1 else ''} to it"


def find_referrers(mem: Memory, runtime: Runtime, objects: Objects, address: int, limit: int = 8,
                   max_objects: int = MAX_OBJECTS, max_seconds: float = MAX_SECONDS) -> Referrers:
    """Containers on the GC lists that hold a pointer to ``address`` (at most ``limit``)."""
    result = Referrers()
    deadline = time.monotonic() + max_seconds
    head_size = runtime.layout["PyGC_Head.size"]
    types: dict[int, TypeInfo | None] = {}
    try:
        states = gc_state_addresses(mem, runtime)
    except PylifeError as exc:
        return Referrers(complete=False, note=f"no GC state: {exc}")
    for state in states:
        for head, generation in generation_heads(runtime, state).items():
            node = mem.ptr(head) & _MASK if _readable(mem, head) else head
            steps = 0
            while node and node != head:
                if result.scanned >= max_objects or (steps & 1023 == 0 and time.monotonic() > deadline):
                    result.complete = False
                    result.note = (f"stopped after {result.scanned} containers "
                                   f"({'time' if result.scanned < max_objects else 'count'} budget)")
                    return result
                steps += 1
                result.scanned += 1
                obj = node + head_size
                if obj != address:
                    where = _holds(mem, objects, types, obj, address)
                    if where is not None:
                        result.found.append(where)
                        if len(result.found) >= limit:
                            return result
                try:
                    node = mem.ptr(node) & _MASK
                except UnreadableMemory:
                    result.complete = False
                    which = "permanent" if generation == PERMANENT_GENERATION else str(generation)
                    result.note = f"the GC list of generation {which} is broken at {node:#x}"
                    break
    return result


def _readable(mem: Memory, address: int) -> bool:
    try:
        mem.ptr(address)
        return True
    except UnreadableMemory:
        return False


def _holds(mem: Memory, objects: Objects, types: dict[int, TypeInfo | None], obj: int, target: int) -> str | None:
    """How ``obj`` points at ``target`` ("list 0x... (index 3)"), or None."""
    try:
        type_address = objects.type_address(obj)
        if type_address not in types:
            try:
                types[type_address] = objects.type_info(type_address)
            except PylifeError:
                types[type_address] = None
        tp = types[type_address]
        if tp is None:
            return None
        name = tp.qualified
        if tp.kind in ("list", "tuple"):
            items, _count = objects.sequence_items(obj, tp.kind, MAX_ITEMS)
            return next((f"{name} {obj:#x} (index {i})" for i, item in enumerate(items) if item == target), None)
        if tp.kind == "dict":
            pairs, _used = objects.dict_items(obj, MAX_ITEMS, MAX_ITEMS)
            for key, value in pairs:
                if value == target:
                    return f"{name} {obj:#x} (key {_key_text(objects, key)})"
                if key == target:
                    return f"{name} {obj:#x} (as a key)"
            return None
        if tp.kind in ("set", "frozenset"):
            keys, _used = objects.set_keys(obj, MAX_ITEMS, MAX_ITEMS)
            return f"{name} {obj:#x}" if target in keys else None
        # Any other container: its own memory (members, slots, cells' contents, 3.13 inline values).
        own = objects.size(obj, tp) - objects.layout.preheader_size(tp.flags, True)
        size = max(16, min(own, MAX_BODY))
        raw = mem.read(obj, size - size % 8)
        for offset, (word,) in enumerate(struct.iter_unpack("<Q", raw)):
            if word == target and offset >= 2:  # past ob_refcnt and ob_type
                return f"{name} {obj:#x} (at +{offset * 8:#x})"
    except PylifeError:
        return None
    return None


def _key_text(objects: Objects, key: int) -> str:
    try:
        if objects.is_kind(key, "str"):
            text, cut = objects.str_value(key, 40)
            return repr(text) + ("..." if cut else "")
        if objects.is_kind(key, "int"):
            value = objects.int_value(key)
            if value is not None:
                return str(value)
        return f"{objects.type_of(key).qualified} at {key:#x}"
    except PylifeError:
        return f"{key:#x}"
