"""Find existing types by name at a stop: heap types are tracked by the cyclic GC.

Walks every generation list of every GC state (pycore_gc.h: a circular list
through ``_gc_next`` from each head), bounded and cycle-safe, and keeps the
objects whose own type is a metatype (``Py_TPFLAGS_TYPE_SUBCLASS``). Static
types are not on these lists: they are found when ``PyType_Ready`` runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..cpython.gc import gc_state_addresses, generation_heads
from ..cpython.objects import TPFLAGS_TYPE_SUBCLASS, Objects
from ..cpython.runtime import Runtime
from ..errors import PylifeError, UnreadableMemory
from ..target import Memory

MAX_NODES = 2_000_000  # objects visited in all lists together
_POINTER_MASK = ~3  # _gc_next carries flag bits in its low 2 bits


def find_types(mem: Memory, runtime: Runtime, objects: Objects,
               wanted: Callable[[str, str], bool]) -> Iterator[tuple[int, str]]:
    """(type address, qualified name) of every GC-tracked type for which ``wanted(tp_name, qualified)``."""
    layout = runtime.layout
    head_size = layout["PyGC_Head.size"]
    flags_offset = layout["PyTypeObject.tp_flags"]
    metatypes: dict[int, bool] = {}
    seen: set[int] = set()
    budget = MAX_NODES
    for state in gc_state_addresses(mem, runtime):
        for head in generation_heads(runtime, state):
            node = head
            while budget > 0:
                budget -= 1
                try:
                    node = mem.ptr(node) & _POINTER_MASK
                except UnreadableMemory:
                    break
                if node in (0, head) or node in seen:
                    break
                seen.add(node)
                address = node + head_size
                try:
                    metatype = objects.type_address(address)
                    is_meta = metatypes.get(metatype)
                    if is_meta is None:
                        is_meta = metatypes[metatype] = bool(mem.u64(metatype + flags_offset) & TPFLAGS_TYPE_SUBCLASS)
                    if not is_meta:
                        continue
                    info = objects.type_info(address)
                except PylifeError:
                    continue
                if wanted(info.name, info.qualified):
                    yield address, info.qualified
