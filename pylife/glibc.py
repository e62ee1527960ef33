"""pthread_self() of every thread, read from glibc's own thread list.

CPython 3.8-3.10 tie a thread state to its OS thread only by pthread_t
(``tstate->thread_id``), which on x86-64 Linux equals the thread's fs_base.
When the debugger cannot read fs_base (lldb-16 has no such register, live or
in cores) the value is found the way libthread_db finds it. glibc >= 2.34
exports, for libthread_db, descriptors of its private structures:
``_thread_db_<struct>_<field>`` is ``uint32_t[3] {size in bits, count,
byte offset}`` (nptl_db/structs.def). Every ``struct pthread`` is on one of
the lists ``_rtld_global._dl_stack_user`` (the main thread, user stacks) or
``_dl_stack_used``, linked through ``struct pthread.list``; its ``tid`` field
is the LWP, and its address is pthread_self().
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import UnreadableMemory
from .target import Memory, Target

MAX_PTHREADS = 4096
_LISTS = ("rtld_global__dl_stack_user", "rtld_global__dl_stack_used")


def pthreads_by_tid(target: Target, mem: Memory) -> dict[int, int]:
    """LWP -> struct pthread address; empty when glibc's descriptors are not found."""
    rtld_global = target.symbol_address("_rtld_global")
    offsets: dict[str, int] = {}
    try:
        for name in ("pthread_list", "pthread_tid", "list_t_next", *_LISTS):
            descriptor = target.symbol_address(f"_thread_db_{name}")
            if descriptor is None:
                return {}
            offsets[name] = mem.u32(descriptor + 8)
    except UnreadableMemory:
        return {}
    if rtld_global is None:
        return {}
    result: dict[int, int] = {}
    for name in _LISTS:
        head = rtld_global + offsets[name]
        seen: set[int] = set()
        try:
            node = mem.ptr(head + offsets["list_t_next"])
            while node and node != head and node not in seen and len(result) < MAX_PTHREADS:
                seen.add(node)
                pthread = node - offsets["pthread_list"]
                tid = mem.i32(pthread + offsets["pthread_tid"])
                if tid > 0:
                    result[tid] = pthread
                node = mem.ptr(node + offsets["list_t_next"])
        except UnreadableMemory:
            continue
    return result


class ThreadPointers:
    """Both adapters' ``thread_pointer``: the debugger's fs_base when it has one,
    else glibc's thread list, read at most once per ``stop_key()``.

    gdb reads $fs_base; lldb-16 has no such register (added in lldb 17), live
    or in cores. The key is the adapter's: anything that changes when the
    program may have run (lldb's stop id; gdb's count of stops and hits)."""

    def __init__(self, target: Target, stop_key: Callable[[], object]) -> None:
        self._target = target
        self._stop_key = stop_key
        self._table: tuple[object, dict[int, int]] | None = None

    def forget(self) -> None:
        self._table = None

    def get(self, tid: int, register: int | None) -> int | None:
        """``register``: the fs_base the debugger read, None when it could not."""
        if register is not None:
            return register
        key = self._stop_key()
        if self._table is None or self._table[0] != key:
            self._table = (key, pthreads_by_tid(self._target, Memory(self._target)))
        return self._table[1].get(tid)
