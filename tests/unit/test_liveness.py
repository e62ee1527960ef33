"""Verdicts ALIVE / FREED / CORRUPT / UNKNOWN on fake images of every layout, through `pylife info`.

Each test builds the allocator's real state (tests/unit/builders.py
FakeObmalloc: arenas, pools, debug headers, glibc chunks) and then does to
the memory what CPython does when it frees, reuses or caches an object.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from pylife.commands import CommandFailed, execute
from pylife.cpython import liveness

from .builders import FakeObmalloc, FakePython, FakeTracemalloc
from .support import INFO_KEYS, INFO_VERDICT_KEYS, info_json, run_json, session_of


def _verdict(py: FakePython, address: int) -> dict[str, Any]:
    data = info_json(py, address)
    assert "verdict" in data, data
    return data


def _slots_type(py: FakePython) -> int:
    """A GC'd heap type without managed pre-header fields (a class with __slots__)."""
    flags = py.facts["Slotted"][0]
    return py.heap_type("Slotted", "__main__", flags=flags, basicsize=24)


# ---- alive --------------------------------------------------------------------------


@pytest.mark.parametrize("hooks", [False, True], ids=["pymalloc", "debug"])
def test_alive_pymalloc_object(py: FakePython, hooks: bool) -> None:
    heap = FakeObmalloc(py, debug_hooks=hooks)
    cls = _slots_type(py)
    obj = heap.instance(cls)
    data = _verdict(py, obj)
    assert set(data) == INFO_KEYS
    assert data["verdict"] == liveness.ALIVE and data["type"] == "__main__.Slotted"
    facts = data["allocator"]
    assert facts["name"] == "pymalloc" and facts["debug_hooks"] is hooks and facts["region"] == "pymalloc"
    assert facts["block"] == obj - 16 - (16 if hooks else 0) and facts["block_state"] == "allocated"
    assert facts["size_class"] == -(-(40 + (24 if hooks else 0)) // 16) * 16
    if hooks:
        assert facts["debug_api"] == "o" and facts["debug_pads_ok"] and facts["debug_requested_size"] == 40
    text = execute(session_of(py), ["info", hex(obj)])
    assert re.search(r"^verdict +ALIVE$", text, re.M) and "size class" in text


def test_alive_large_object_from_malloc(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    items = 100
    obj = heap.new_object(py.types["tuple"], 24 + 8 * items)
    py.t.write_i64(obj + 16, items)
    for i in range(items):
        py.t.write_u64(obj + 24 + 8 * i, py.none)
    data = _verdict(py, obj)
    assert data["verdict"] == liveness.ALIVE and data["type"] == "tuple"
    assert data["allocator"]["region"] == "malloc" and data["allocator"]["chunk_in_use"] is True


def test_static_objects(py: FakePython) -> None:
    FakeObmalloc(py)
    for address in (py.none, py.types["int"], py.true):
        data = _verdict(py, address)
        assert data["verdict"] == liveness.ALIVE, data
        assert data["allocator"]["region"] == "static" and "libpython" in data["allocator"]["section"]
        assert any("static object" in r for r in data["reasons"])


def test_object_inside_pyruntime_is_static(py: FakePython) -> None:
    if py.key < (3, 11):
        pytest.skip("_PyRuntime holds objects from 3.11")
    int_object = py.static.alloc(32)  # stands for a small int laid out inside _PyRuntime
    address = py.runtime + 0x800
    py.t.write(address, py.t.read(py.true, 32))
    del int_object
    data = _verdict(py, address)
    assert data["verdict"] == liveness.ALIVE and data["allocator"]["section"] == "_PyRuntime"


def test_unknown_allocator_is_never_alive_without_evidence(py: FakePython) -> None:
    """No allocator symbols, no pool or chunk header around the object (issue 11, F3): a freed
    object keeps its type, so a valid header alone proves nothing. Alive only where the arena
    table was read (3.12 embeds it in the interpreter) and says "not pymalloc's"."""
    data = _verdict(py, py.value([1, 2]))
    assert data["allocator"]["name"] == "unknown"
    if data["verdict"] == liveness.ALIVE:
        assert data["reasons"] == ["not in a pymalloc arena"], data
    else:
        assert data["verdict"] == liveness.UNKNOWN, data
        assert any("cannot tell alive from freed" in r for r in data["reasons"]), data


# ---- freed ----------------------------------------------------------------------------


def test_freed_block_on_the_pool_free_list(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    cls = _slots_type(py)
    keep, victim = heap.instance(cls), heap.instance(cls)
    py.gc_untrack(victim)
    heap.free_object(victim, cls, 24)
    data = _verdict(py, victim)
    assert data["verdict"] == liveness.FREED and data["stale_type"] == "__main__.Slotted"
    assert data["allocator"]["block_state"] == "free"
    assert any("free list of its pymalloc pool (size class 48)" in r for r in data["reasons"])
    assert _verdict(py, keep)["verdict"] == liveness.ALIVE
    assert any("freed" in note for note in data["notes"])


def test_block_never_handed_out(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    pool = heap.pool(64)
    block = pool.alloc(64)
    data = info_json(py, block + 64 + 16)  # the next block: beyond nextoffset, all zeros
    assert data["verdict"] == liveness.FREED and "error" in data and set(data) == INFO_VERDICT_KEYS
    assert any("never handed out" in r for r in data["reasons"])


def test_freed_under_debug_hooks_is_dead_fill(py: FakePython) -> None:
    heap = FakeObmalloc(py, debug_hooks=True)
    cls = _slots_type(py)
    victim = heap.instance(cls)
    py.gc_untrack(victim)
    heap.free_object(victim, cls, 24)
    data = info_json(py, victim)
    assert data["verdict"] == liveness.FREED and data["stale_type"] is None, data
    assert any("0xDD" in r for r in data["reasons"]) and data["allocator"]["block_state"] == "free"
    text = execute(session_of(py), ["info", hex(victim)])
    assert text.startswith(f"No live PyObject at {victim:#x}") and "FREED" in text


@pytest.mark.parametrize("tcache", [False, True], ids=["unsorted", "tcache"])
def test_freed_large_object(py: FakePython, tcache: bool) -> None:
    heap = FakeObmalloc(py)
    size = 24 + 8 * 100
    obj = heap.new_object(py.types["tuple"], size, refcnt=0, generation=None)  # deallocated at refcount 0
    heap.malloc(64)  # a guard: the freed chunk is not the top chunk
    user = obj - 16
    heap.free_chunk(user, tcache=tcache)
    data = info_json(py, obj)
    assert data["verdict"] == liveness.FREED, data
    assert data["allocator"]["region"] == "malloc"
    assert any(("tcache" if tcache else "PREV_INUSE") in r for r in data["reasons"]), data


def test_freed_large_object_under_debug_hooks(py: FakePython) -> None:
    heap = FakeObmalloc(py, debug_hooks=True)
    obj = heap.new_object(py.types["tuple"], 24 + 8 * 100, generation=None)
    heap.malloc(64)
    assert _verdict(py, obj)["verdict"] == liveness.ALIVE
    heap.free_object(obj, py.types["tuple"], 24 + 8 * 100)
    data = info_json(py, obj)
    assert data["verdict"] == liveness.FREED and any("0xDD" in r for r in data["reasons"]), data


def test_refcount_zero_with_intact_type_is_cached(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    obj = heap.new_object(py.types["tuple"], 24 + 8 * 3, refcnt=0, generation=None)
    py.t.write_i64(obj + 16, 3)
    data = _verdict(py, obj)
    assert data["verdict"] == liveness.FREED and data["stale_type"] == "tuple"
    assert any("refcount 0 with an intact type" in r for r in data["reasons"])


def test_float_free_list_links_through_ob_type(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    older = heap.new_object(py.types["float"], 24, refcnt=0)
    newer = heap.new_object(py.types["float"], 24, refcnt=0)
    py.t.write_u64(older + 8, 0)  # the last float on the list
    py.t.write_u64(newer + 8, older)  # float_dealloc: Py_SET_TYPE(op, free_list)
    for address, words in ((newer, "another dead float"), (older, "ob_type NULL")):
        data = info_json(py, address)
        assert data["verdict"] == liveness.FREED and data["stale_type"] == "float", data
        assert any(words in r for r in data["reasons"]), data


@pytest.mark.parametrize("hooks", [False, True], ids=["pymalloc", "debug"])
def test_interior_pointer_into_zero_bytes_is_not_a_dead_float(py: FakePython, hooks: bool) -> None:
    """Every aligned address inside a live bytes payload of zeros: refcount 0 and ob_type NULL
    there are data, not the float free list; the verdict names the object holding the address."""
    heap = FakeObmalloc(py, debug_hooks=hooks)
    obj = heap.new_object(py.types["bytes"], py.facts["bytes"][1] + 64)
    py.t.write_i64(obj + py.o("PyVarObject.ob_size"), 64)
    payload = obj + py.o("PyBytesObject.ob_sval")
    for address in range(obj + 8, payload + 64, 8):
        data = info_json(py, address)
        assert data.get("verdict") in (None, liveness.UNKNOWN) and not data.get("stale_type"), (address - obj, data)
        if (address - obj) in liveness.PREHEADERS:  # an older object could have started there
            assert f"holds a bytes object at {obj:#x}" in data["error"] and "stale pointer" in data["error"], data
        else:
            assert f"bytes into the live bytes object at {obj:#x}: an interior pointer" in data["error"], data
    verdict = liveness.assess(py.target, *_parts(py), obj + 48)
    assert verdict.verdict == liveness.UNKNOWN
    assert verdict.allocator["object"] == obj and verdict.allocator["object_type"] == "bytes"


def _parts(py: FakePython) -> tuple[Any, ...]:
    session = session_of(py)
    mem = session.memory()
    return mem, session.runtime(mem), session.objects(mem)


def test_interior_header_lookalike_is_not_a_reused_block(py: FakePython) -> None:
    """A live bytes object whose payload holds a valid-looking float header: the address
    of that copy is inside the bytes object, not a freed object whose block was reused."""
    heap = FakeObmalloc(py)
    obj = heap.new_object(py.types["bytes"], py.facts["bytes"][1] + 32)
    py.t.write_i64(obj + py.o("PyVarObject.ob_size"), 32)
    payload = obj + py.o("PyBytesObject.ob_sval")
    inner = payload + (-payload % 8)
    py.t.write_i64(inner, 1)
    py.t.write_u64(inner + 8, py.types["float"])
    verdict = liveness.assess(py.target, *_parts(py), inner)
    assert verdict.verdict == liveness.UNKNOWN and verdict.stale_type is None, verdict
    assert verdict.allocator["object"] == obj, verdict
    assert "interior pointer" in execute(session_of(py), ["info", hex(inner)])


def test_block_reused_by_a_smaller_object(py: FakePython) -> None:
    """The old object started 16 bytes into the block; a new float (24 bytes) starts at the block."""
    heap = FakeObmalloc(py)
    cls = py.heap_type("Empty", "__main__", flags=py.facts["Slotted"][0], basicsize=16)
    old = heap.new_object(cls, 16, generation=None)  # GC head + 16: the 32-byte class
    pool = heap.pool(32)
    pool.free(old - 16)
    block = pool.reuse()
    assert block == old - 16
    py.t.write_i64(block, 1)  # a float's header at the block start: ob_type stays stale at old+8
    py.t.write_u64(block + 8, py.types["float"])
    py.t.write_f64(block + 16, 2.5)  # the float's value lands on the old ob_refcnt
    data = _verdict(py, old)
    assert data["verdict"] == liveness.FREED and data["stale_type"] == "__main__.Empty", data
    assert data["allocator"]["new_type"] == "float" and data["allocator"]["new_object"] == block
    assert any("reused" in r for r in data["reasons"])


def test_pointer_into_a_new_object_is_not_a_verdict(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    obj = heap.new_object(py.types["bytes"], 33 + 40)
    py.t.write_i64(obj + 16, 40)
    py.t.write(obj + 32, b"\xef\xbe\xad\xde" * 10)
    data = info_json(py, obj + 32)
    assert set(data) == {"error"} and "not a PyObject" in data["error"] and "bytes object at" in data["error"]


# ---- corrupt and unknown ----------------------------------------------------------------


@pytest.mark.parametrize("hooks", [False, True], ids=["pymalloc", "debug"])
def test_smashed_type(py: FakePython, hooks: bool) -> None:
    heap = FakeObmalloc(py, debug_hooks=hooks)
    obj = heap.new_object(py.types["float"], 24)
    py.t.write_u64(obj + 8, py.value("I am not a type"))
    data = info_json(py, obj)
    assert set(data) == INFO_VERDICT_KEYS, data
    assert data["verdict"] == liveness.CORRUPT and "not a type object" in data["error"]
    assert any("metatype" in r for r in data["reasons"])
    text = execute(session_of(py), ["info", hex(obj)])
    assert "CORRUPT" in text and "problem" in text


def test_negative_refcount_is_corrupt(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    obj = heap.new_object(py.types["float"], 24, refcnt=-(1 << 40) if py.key in ((3, 12), (3, 13)) else -2)
    data = _verdict(py, obj)
    assert data["verdict"] == liveness.CORRUPT and any("negative" in r for r in data["reasons"])


def test_unreadable_and_junk_addresses_stay_errors(py: FakePython) -> None:
    FakeObmalloc(py)
    for address in (0x10, 0x7F7F_0000_0000, py.none + 3):
        data = info_json(py, address)
        assert set(data) == {"error"}, data
        with pytest.raises(CommandFailed):
            execute(session_of(py), ["info", hex(address)])


def test_garbage_outside_known_allocations_is_unknown(py: FakePython) -> None:
    """A bad ob_type with no allocator evidence: the plain one-line error, no verdict claimed."""
    obj = py.heap.alloc(64) + 16
    py.t.write_i64(obj, 1)
    py.t.write_u64(obj + 8, 0xDEADBEEF)
    data = info_json(py, obj)
    assert set(data) == {"error"}


def test_assess_never_raises_on_hostile_memory(py: FakePython) -> None:
    heap = FakeObmalloc(py, debug_hooks=True)
    session = session_of(py)
    mem = session.memory()
    runtime = session.runtime(mem)
    assessor = liveness.Assessor(py.target, mem, runtime, session.objects(mem))
    pool = heap.pool(64)
    pool.alloc(64)
    py.t.write(pool.address + 8, b"\xff" * 40)  # a trashed pool header
    for address in (pool.address + 48, pool.address + 64, 0x7F7F_0000_0000, 0, 1 << 63, heap.next_pool):
        verdict = assessor.assess(address)
        assert verdict.verdict in (liveness.UNKNOWN, liveness.FREED, liveness.CORRUPT, liveness.ALIVE)


# ---- alloc-site ------------------------------------------------------------------------------


def test_alloc_site(py: FakePython) -> None:
    heap = FakeObmalloc(py)
    traces = FakeTracemalloc(py)
    cls = _slots_type(py)
    obj = heap.instance(cls)
    traces.trace(obj - 16, 48, [("/src/app.py", 30), ("/src/app.py", 12), ("/src/main.py", 3)])
    for other in range(40):  # crowd the buckets
        traces.trace(0x7F90_0000_0000 + 16 * other, 32, [("/src/x.py", other)])
    data = run_json(py, ["alloc-site", hex(obj)])
    assert data["traced"] is True and data["allocation"] == obj - 16 and data["size"] == 48
    assert [(f["file"], f["line"]) for f in data["frames"]] == [("/src/main.py", 3), ("/src/app.py", 12),
                                                               ("/src/app.py", 30)]
    text = execute(session_of(py), ["alloc-site", hex(obj)])
    assert "most recent call last" in text and 'File "/src/app.py", line 30' in text.splitlines()[-1]
    untraced = heap.instance(cls)
    data = run_json(py, ["alloc-site", hex(untraced)])
    assert data["traced"] is False and data["frames"] == [] and data["notes"]


def test_alloc_site_when_tracemalloc_is_off(py: FakePython) -> None:
    FakeTracemalloc(py, tracing=False)
    data = run_json(py, ["alloc-site", hex(py.none)])
    assert set(data) == {"error"} and "tracemalloc is not tracing" in data["error"]


def test_gc_head_of_a_live_object_is_no_reusing_object(py: FakePython) -> None:
    """3.8 under the debug hooks: a live module's GC head, read as an object, happened to
    pass for one (``_gc_prev`` pointing at something type-like); ``_gc_next``, its
    "refcount", is a pointer, so it is no live object that reused the block."""
    heap = FakeObmalloc(py, debug_hooks=True)
    cls = _slots_type(py)
    obj = heap.instance(cls)
    py.t.write_u64(obj - 16, 0x7F12_3456_7890)  # _gc_next: the next GC head
    py.t.write_u64(obj - 8, py.types["float"])  # _gc_prev read as ob_type
    data = _verdict(py, obj)
    assert data["verdict"] == liveness.ALIVE and data["type"] == "__main__.Slotted", data
