"""The object pointers a Python frame holds: its fast locals and its value stack (issue 10, point 2).

The value stack follows the fast locals (cells and free variables
included) in the frame's localsplus array, co_stacksize slots at most.
Where its top is depends on the version; the layout's fields say which:

- 3.14+ ``_PyInterpreterFrame.stackpointer``: a pointer into localsplus
  (Include/internal/pycore_interpframe_structs.h);
- 3.11-3.13 ``_PyInterpreterFrame.stacktop``: an index into localsplus
  (Include/internal/pycore_frame.h), saved at calls and yields only;
- 3.10 ``PyFrameObject.f_stackdepth``: a count, -1 while the frame runs
  (Python/ceval.c keeps the pointer in a C local);
- 3.8/3.9 ``PyFrameObject.f_stacktop``: NULL while the frame runs.

A running frame (or a saved top that does not fit the stack) has no
trustworthy top, and a popped slot keeps its old pointer: slots up to
co_stacksize past a known top, or all of them without one, are read as
leftovers, candidates whose liveness verdict alone decides. Memory is
hostile: counts are bounded and every read may fail.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import PylifeError
from .attributes import Reader
from .frames import PyFrame
from .names import frame_names
from .objects import Objects, plausible_pointer

MAX_STACK = 1 << 10  # value-stack slots read per frame


@dataclass(frozen=True)
class Slot:
    value: int  # the pointer the slot holds
    name: str  # "local x", "value stack slot 2"
    live: bool  # a local, or a value-stack slot under a known top: it holds a reference


def frame_slots(objects: Objects, frame: PyFrame) -> list[Slot]:
    """The non-NULL object pointers in ``frame``'s locals and value stack; [] when unreadable."""
    if frame.code is None:
        return []
    try:
        names = frame_names(Reader(objects), frame)
    except PylifeError:
        return []
    found = [Slot(value, f"local {name or '#' + str(index)}", True)
             for index, (name, value, _cell) in enumerate(names.slots) if value and plausible_pointer(value)]
    try:
        found += _value_stack(objects, frame, len(names.slots))
    except PylifeError:
        pass
    return found


def _value_stack(objects: Objects, frame: PyFrame, nlocalsplus: int) -> list[Slot]:
    L = objects.layout
    mem = objects.mem
    assert frame.code is not None
    size = mem.i32(frame.code.address + L["PyCodeObject.co_stacksize"])
    if not 0 < size <= MAX_STACK:
        return []
    old_style = not L.has("_PyInterpreterFrame.size")
    localsplus = frame.address + L["PyFrameObject.f_localsplus" if old_style else "_PyInterpreterFrame.localsplus"]
    base = localsplus + 8 * nlocalsplus  # <= 3.10: f_valuestack = f_localsplus + extras (frameobject.c)
    depth: int | None = None
    if L.has("_PyInterpreterFrame.stackpointer"):
        top = mem.ptr(frame.address + L["_PyInterpreterFrame.stackpointer"])
        depth = (top - base) // 8 if top and (top - base) % 8 == 0 else None
    elif L.has("_PyInterpreterFrame.stacktop"):
        depth = mem.i32(frame.address + L["_PyInterpreterFrame.stacktop"]) - nlocalsplus
    elif L.has("PyFrameObject.f_stackdepth"):
        depth = mem.i32(frame.address + L["PyFrameObject.f_stackdepth"])
    elif L.has("PyFrameObject.f_stacktop"):
        top = mem.ptr(frame.address + L["PyFrameObject.f_stacktop"])
        depth = (top - base) // 8 if top and (top - base) % 8 == 0 else None
    if depth is not None and not 0 <= depth <= size:
        depth = None  # running, or a stale or hostile top: every slot is a leftover
    tags = L.frame_slot_tag_bits()
    words = struct.unpack(f"<{size}Q", mem.read(base, 8 * size))
    slots = []
    for index, word in enumerate(words):
        if tags and word & tags == tags:
            continue  # 3.15 Py_INT_TAG: an unboxed int, no object
        value = word & ~tags
        live = depth is not None and index < depth
        if value and plausible_pointer(value):
            slots.append(Slot(value, f"value stack slot {index}" if live else f"leftover value stack slot {index}",
                              live))
    return slots
