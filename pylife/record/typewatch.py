"""Watch every new instance of a type, from the program's start (`pylife watch --type NAME`).

Two kinds of hook, both plain breakpoints (design.md §7):

- type creation: the entry of ``PyType_Ready`` (every static type of an
  extension, every Python class through ``type_new`` and every heap type
  made from a spec calls it, 3.8-3.13), whose first argument is the type
  being readied. pylife reads its name there and, when it matches NAME,
  adds the type pointer to the allocation condition. Set pending before
  ``run``: the debugger resolves it when libpython (or the executable) loads.
- allocation: every return instruction of the functions that hand out new
  objects with their type already set: ``PyType_GenericAlloc`` (tp_alloc of
  Python classes, and of extension types using PyType_GenericNew; 3.13's
  specialised ``_PyType_NewManagedObject`` calls it too), ``_PyObject_New``,
  ``_PyObject_NewVar``, ``_PyObject_GC_New`` and ``_PyObject_GC_NewVar``
  (``PyObject_New``/``PyObject_GC_New`` of extensions). At a return, rax
  holds the new object, so the debugger itself evaluates
  ``rax != 0 && rax->ob_type == TYPE`` (ObjectTypeIs) and pylife only runs
  for an instance of the watched type.

A matched instance gets a hardware watchpoint through ``Recorder.watch``
when a slot is free, with its allocation stack (merged C + Python) in its
history. A watched instance that was freed gives its slot to the next new
instance; an instance that finds every slot busy with live objects is
counted as skipped. After ``--max`` instances the allocation hooks are
disarmed (their condition becomes false).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..cpython.objects import TPFLAGS_HEAPTYPE, Objects
from ..errors import NotLive, PylifeError, UserError
from ..target import BreakHit, Memory, ObjectTypeIs, TargetKind
from .context import TargetContext
from .recorder import Recorder
from .watch import HARDWARE_SLOTS, WatchOptions


class WatchContext(TargetContext, Protocol):
    """What a type watch needs of the session that owns it (pylife/session.py; no import back):
    the target, and the recorder that watches each new instance."""

    @property
    def recorder(self) -> Recorder: ...

    def apply_pending(self) -> None: ...

TYPE_READY = "PyType_Ready"
ALLOCATORS = ("PyType_GenericAlloc", "_PyObject_New", "_PyObject_NewVar", "_PyObject_GC_New", "_PyObject_GC_NewVar")
# PyObject.ob_type of the default (GIL) build, Include/object.h: used only when the
# runtime cannot be read yet (libpython just loaded, before Py_Initialize).
DEFAULT_TYPE_OFFSET = 8
MAX_TYPE_NAME = 200


def name_matches(query: str, name: str, qualified: str) -> bool:
    """NAME given by the user against a type's tp_name and module-qualified name.

    ``Victim`` matches ``__main__.Victim``, ``app.Victim`` and a static
    ``buggy.Victim``; ``app.Victim`` matches only that module's."""
    if "." in query:
        return query in (name, qualified)
    return query in (name, name.rsplit(".", 1)[-1], qualified.rsplit(".", 1)[-1])


@dataclass
class TypeWatch:
    """One `pylife watch --type NAME`: its hooks, the types it resolved and its counts."""

    name: str
    max_objects: int  # 0: no limit
    options: WatchOptions
    types: dict[int, str] = field(default_factory=dict)  # type address -> qualified name
    allocators: dict[int, tuple[str, ...]] = field(default_factory=dict)  # type address -> functions that make its instances
    matched: int = 0  # new instances seen
    watched: int = 0  # of which got a hardware watchpoint
    skipped: int = 0  # of which found every slot busy
    addresses: list[int] = field(default_factory=list)  # the instances watched, in order
    ready_hook: int | None = None
    alloc_hooks: dict[tuple[str, int], int] = field(default_factory=dict)  # (function, offset) -> handle
    type_offset: int = DEFAULT_TYPE_OFFSET
    last_error: str | None = None

    @property
    def done(self) -> bool:
        return bool(self.max_objects) and self.watched >= self.max_objects

    @property
    def state(self) -> str:
        if self.done:
            return "done"
        return "armed" if self.types and self.alloc_hooks else "pending"

    def condition(self, function: str) -> ObjectTypeIs:
        """The allocation hook's condition in ``function``: the watched types it allocates."""
        types = [] if self.done else [t for t in self.types if function in self.allocators.get(t, ALLOCATORS)]
        return ObjectTypeIs("rax", self.type_offset, tuple(types[: ObjectTypeIs.MAX_TYPES]))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "types": [{"address": a, "name": n} for a, n in self.types.items()],
                "matched": self.matched, "watched": self.watched, "skipped": self.skipped,
                "max": self.max_objects, "objects": list(self.addresses), "stop_on": self.options.stop_on,
                "hooks": len(self.alloc_hooks) + (self.ready_hook is not None), "error": self.last_error}


class TypeWatcher:
    """The type watches of one session; the adapters reach it through Session."""

    def __init__(self) -> None:
        self.watches: dict[str, TypeWatch] = {}

    # ---- commands ---------------------------------------------------------

    def add(self, session: WatchContext, name: str, max_objects: int, options: WatchOptions) -> TypeWatch:
        if session.target.kind is TargetKind.CORE:
            raise NotLive("cannot watch on a core file: post-mortem has no future")
        name = name.strip()
        if not name or len(name) > MAX_TYPE_NAME or any(c.isspace() or ord(c) < 0x20 for c in name):
            raise UserError(f"--type wants a type name such as Victim or app.Victim, not {name!r}")
        if name in self.watches:
            raise UserError(f"type {name} is already watched (see pylife watches)")
        watch = TypeWatch(name, max_objects, options)
        self.watches[name] = watch
        if _has_process(session):
            self._resolve_existing(session, watch)
        self.arm(session)
        return watch

    def remove(self, session: WatchContext, name: str) -> TypeWatch:
        watch = self.watches.pop(name, None)
        if watch is None:
            raise UserError(f"type {name} is not watched (see pylife watches)")
        for handle in [watch.ready_hook, *watch.alloc_hooks.values()]:
            if handle is not None:
                try:
                    session.target.remove(handle)
                except PylifeError:
                    pass
        watch.ready_hook = None
        watch.alloc_hooks.clear()
        return watch

    def forget_process(self) -> list[int]:
        """The process exited: its hooks are gone with it (handles to delete);
        the type watches stay, pending, for the next run."""
        handles: list[int] = []
        for watch in self.watches.values():
            handles += [h for h in [watch.ready_hook, *watch.alloc_hooks.values()] if h is not None]
            watch.ready_hook = None
            watch.alloc_hooks.clear()
            watch.types.clear()
        return handles

    # ---- arming (at safe points: commands, new modules, stops) --------------

    def arm(self, session: WatchContext) -> None:
        """Create whatever hooks can be created now; idempotent and cheap when all are set."""
        for watch in self.watches.values():
            try:
                self._arm(session, watch)
            except PylifeError as exc:
                watch.last_error = str(exc)

    def _arm(self, session: WatchContext, watch: TypeWatch) -> None:
        target = session.target
        if watch.ready_hook is None:
            watch.ready_hook = target.break_at(TYPE_READY, 0, None, lambda hit: self.on_type_ready(session, watch, hit))
        if watch.alloc_hooks or not _has_process(session):
            return
        try:
            watch.type_offset = session.runtime().layout["PyObject.ob_type"]
        except PylifeError:
            watch.type_offset = DEFAULT_TYPE_OFFSET
        for function in ALLOCATORS:
            for offset in target.return_offsets(function):
                key = (function, offset)
                if key not in watch.alloc_hooks:
                    watch.alloc_hooks[key] = target.break_at(
                        function, offset, watch.condition(function), lambda hit: self.on_allocation(session, watch, hit))

    def _update_conditions(self, session: WatchContext, watch: TypeWatch) -> None:
        for (function, _offset), handle in watch.alloc_hooks.items():
            session.target.set_condition(handle, watch.condition(function))

    def _resolve_existing(self, session: WatchContext, watch: TypeWatch) -> None:
        """At a stop, the type may exist already: heap types are on the GC lists."""
        from .typefind import find_types  # the GC walk: only needed at a stop

        try:
            mem = session.memory()
            runtime = session.runtime(mem)
            objects = Objects(mem, runtime.layout)
            for address, qualified in find_types(mem, runtime, objects, lambda n, q: name_matches(watch.name, n, q)):
                if len(watch.types) < ObjectTypeIs.MAX_TYPES:
                    watch.types.setdefault(address, qualified)
                    watch.allocators[address] = _allocators_of(session, mem, address)
        except PylifeError as exc:
            watch.last_error = f"cannot look for existing types: {exc}"

    # ---- hooks (inside the debugger's callbacks: never raise) ---------------

    def on_type_ready(self, session: WatchContext, watch: TypeWatch, hit: BreakHit) -> bool:
        """PyType_Ready(type) entered: is ``type`` (rdi) the one named?"""
        try:
            mem = Memory(session.target)
            names = _type_names(session, mem, hit.rdi)
            if names is None or hit.rdi in watch.types or not name_matches(watch.name, *names):
                return False
            if len(watch.types) >= ObjectTypeIs.MAX_TYPES:
                watch.last_error = f"more than {ObjectTypeIs.MAX_TYPES} types named {watch.name}: later ones are not watched"
                return False
            watch.types[hit.rdi] = names[1]
            watch.allocators[hit.rdi] = _allocators_of(session, mem, hit.rdi)
            self.arm(session)
            self._update_conditions(session, watch)
        except PylifeError as exc:
            watch.last_error = f"PyType_Ready hook: {exc}"
        except Exception as exc:  # a pylife bug must not kill the debugger's callback
            watch.last_error = f"internal error in the PyType_Ready hook: {type(exc).__name__}: {exc}"
        return False

    def on_allocation(self, session: WatchContext, watch: TypeWatch, hit: BreakHit) -> bool:
        """An allocation function returns a new instance (rax) of a watched type."""
        try:
            return self._on_allocation(session, watch, hit)
        except PylifeError as exc:
            watch.last_error = f"new instance {hit.rax:#x}: {exc}"
        except Exception as exc:
            watch.last_error = f"internal error on new instance {hit.rax:#x}: {type(exc).__name__}: {exc}"
        return False

    def _on_allocation(self, session: WatchContext, watch: TypeWatch, hit: BreakHit) -> bool:
        address = hit.rax
        if watch.done or address == 0:
            return False
        watch.matched += 1
        recorder = session.recorder
        session.apply_pending()
        stale = recorder.watches.get(address)
        if stale is not None and stale.phase != "alive":  # its block was reused unseen: a new occupant
            recorder.unwatch(address)
            for handle in stale.handles():
                session.target.remove(handle)
        # A slot or two (free-threaded builds watch two words per object, recorder.watch);
        # the user's own hardware watchpoints take theirs.
        others = session.target.other_hardware_watchpoints()
        while recorder.slots_used() + others + 1 > HARDWARE_SLOTS and self._free_a_slot(session):
            pass
        if recorder.slots_used() + others >= HARDWARE_SLOTS:
            watch.skipped += 1
            return False
        options = WatchOptions(watch.options.stop_on, watch.options.max_events, watch.options.depth)
        allocation = recorder.capture(session, hit.tid, options.depth)
        try:
            recorder.watch(session, address, options, session.target.watch_write,
                           origin=f"watch --type {watch.name}", allocation=allocation)
        except UserError as exc:
            if "slots" not in str(exc):
                raise
            watch.skipped += 1  # a free-threaded object needs two slots and only one was free
            return False
        watch.watched += 1
        watch.addresses.append(address)
        if watch.done:
            self._update_conditions(session, watch)
        return False

    def _free_a_slot(self, session: WatchContext) -> bool:
        """Hand the slot of a freed instance (watched by type) to the new one."""
        recorder = session.recorder
        for address, old in list(recorder.watches.items()):
            if old.phase != "alive" and old.history.origin is not None:
                recorder.unwatch(address)
                for handle in old.handles():
                    session.target.remove(handle)
                return True
        return False

    def status(self) -> list[dict[str, Any]]:
        return [w.to_json() for w in self.watches.values()]


def _has_process(session: WatchContext) -> bool:
    return session.target.current_thread() is not None


def _allocators_of(session: WatchContext, mem: Memory, address: int) -> tuple[str, ...]:
    """The allocation functions that make instances of the type at ``address``.

    A Python class (a heap type whose tp_dealloc is typeobject.c's
    subtype_dealloc, set by type_new) gets every instance from its tp_alloc,
    PyType_GenericAlloc, whatever its base (object_new, list/int/... subtype
    constructors, 3.13's _PyType_NewManagedObject): hooking only that spares a
    trap per tuple, list or dict the program allocates. Any other type may
    use PyObject_New and friends too."""
    layout = session.runtime(mem).layout
    dealloc = mem.ptr(address + layout["PyTypeObject.tp_dealloc"])
    flags = mem.u64(address + layout["PyTypeObject.tp_flags"])
    if flags & TPFLAGS_HEAPTYPE and dealloc and dealloc == session.target.symbol_address("subtype_dealloc"):
        return ("PyType_GenericAlloc",)
    return ALLOCATORS


def _type_names(session: WatchContext, mem: Memory, address: int) -> tuple[str, str] | None:
    """(tp_name, module-qualified name) of a type being readied.

    Read loosely: before PyType_Ready a static type's ob_type may still be
    NULL (PyVarObject_HEAD_INIT(NULL, 0)), so the full type check of
    Objects.type_info does not apply yet."""
    layout = session.runtime(mem).layout
    objects = Objects(mem, layout)
    name_ptr = mem.ptr(address + layout["PyTypeObject.tp_name"])
    raw = mem.cstring(name_ptr, MAX_TYPE_NAME + 1) if name_ptr else b""
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not name or len(raw) > MAX_TYPE_NAME or not name.isprintable():
        return None
    flags = mem.u64(address + layout["PyTypeObject.tp_flags"])
    qualified = objects.heap_type_qualname(address) if flags & TPFLAGS_HEAPTYPE else None
    return name, qualified or name
