"""Python thread states and which OS thread runs each (cpython-internals.md §8.1)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import UnreadableMemory
from ..target import Memory, ThreadInfo
from .runtime import MAX_THREADS, Runtime, interpreters


@dataclass(frozen=True)
class PyThread:
    tstate: int
    interp: int
    thread_id: int  # pthread_t, equal to the thread's fs_base on x86-64 Linux
    native_thread_id: int | None  # LWP (3.11+)


def python_threads(mem: Memory, runtime: Runtime) -> list[PyThread]:
    L = runtime.layout
    result: list[PyThread] = []
    seen: set[int] = set()
    for interp in interpreters(mem, runtime):
        try:
            tstate = mem.ptr(interp + L["PyInterpreterState.threads_head"])
        except UnreadableMemory:
            continue
        while tstate and tstate not in seen and len(seen) < MAX_THREADS:
            seen.add(tstate)
            try:
                thread_id = mem.u64(tstate + L["PyThreadState.thread_id"])
                native = (mem.u64(tstate + L["PyThreadState.native_thread_id"])
                          if L.has("PyThreadState.native_thread_id") else None)
                result.append(PyThread(tstate, interp, thread_id, native))
                tstate = mem.ptr(tstate + L["PyThreadState.next"])
            except UnreadableMemory:
                break
    return result


def gil_holder(mem: Memory, runtime: Runtime) -> int | None:
    """The thread state holding the GIL of the main interpreter, if any.

    <= 3.11: _PyRuntime.gilstate.tstate_current (pycore_runtime.h);
    3.12+: interp->ceval.gil->last_holder, valid while ``locked`` is set
    (pycore_gil.h); checked for every interpreter.
    """
    L = runtime.layout
    try:
        if L.has("_PyRuntimeState.tstate_current"):
            return mem.ptr(runtime.address + L["_PyRuntimeState.tstate_current"]) or None
        for interp in interpreters(mem, runtime):
            gil = mem.ptr(interp + L["PyInterpreterState.ceval_gil"])
            if gil and mem.i32(gil + L["_gil_runtime_state.locked"]):
                holder = mem.ptr(gil + L["_gil_runtime_state.last_holder"])
                if holder:
                    return holder
    except UnreadableMemory:
        return None
    return None


def match_os_threads(py_threads: Sequence[PyThread], os_threads: Sequence[ThreadInfo],
                     thread_pointer: Callable[[int], int | None]) -> dict[int, PyThread]:
    """OS tid -> Python thread state. 3.11+ match native_thread_id with the LWP;
    older versions match tstate->thread_id (pthread_t) with the thread's fs_base."""
    matched: dict[int, PyThread] = {}
    by_native = {t.native_thread_id: t for t in py_threads if t.native_thread_id}
    by_pthread = {t.thread_id: t for t in py_threads if t.native_thread_id is None}
    for os_thread in os_threads:
        if os_thread.tid in by_native:
            matched[os_thread.tid] = by_native.pop(os_thread.tid)
        elif by_pthread:
            fs_base = os_thread.fs_base if os_thread.fs_base is not None else thread_pointer(os_thread.tid)
            if fs_base in by_pthread:
                matched[os_thread.tid] = by_pthread.pop(fs_base)
    return matched
