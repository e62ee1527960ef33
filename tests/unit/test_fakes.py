"""The fake Target itself, and pylife's Memory reading through it."""

from __future__ import annotations

import pytest

from pylife.errors import UnreadableMemory, UserError
from pylife.stopinfo import read_stop_info
from pylife.target import Memory, Target, TargetKind, WatchHit

from .fakes import PAGE, FakeTarget


@pytest.fixture
def target() -> FakeTarget:
    t = FakeTarget()
    t.map(0x10000, PAGE)
    t.map(0x10000 + PAGE, PAGE)  # adjacent: reads may cross
    t.map(0x20000, 100)  # not page-sized
    t.write(0x10000 + PAGE - 4, b"abcdefgh")
    t.write(0x20000, b"hello\0world")
    return t


def test_reads(target: FakeTarget) -> None:
    assert target.read(0x10000 + PAGE - 4, 8) == b"abcdefgh"
    assert target.read(0x20000, 0) == b""
    for address, size in [(0x0, 1), (0x20000 + 99, 2), (0x10000 + 2 * PAGE - 1, 2), (0xFFFF, 2),
                          ((1 << 64) - 1, 2), (-1, 1)]:
        with pytest.raises(UnreadableMemory):
            target.read(address, size)


def test_map_rejects_overlaps(target: FakeTarget) -> None:
    with pytest.raises(ValueError):
        target.map(0x10000 + 10, 10)
    with pytest.raises(ValueError):
        target.map(0x1FFF0, 0x20)
    with pytest.raises(ValueError):
        target.write(0x30000, b"x")


def test_memory_over_partial_pages(target: FakeTarget) -> None:
    mem = Memory(target)
    assert mem.read(0x20000, 5) == b"hello"  # page not fully mapped: falls back to exact reads
    assert mem.cstring(0x20000) == b"hello"
    assert mem.cstring(0x20006) == b"world"  # runs into the unmapped rest of the page
    assert mem.read(0x10000 + PAGE - 4, 8) == b"abcdefgh"
    with pytest.raises(UnreadableMemory):
        mem.u64(0x20000 + 96)
    with pytest.raises(UnreadableMemory):
        mem.read((1 << 64) - 4, 8)


def test_symbols_and_expressions(target: FakeTarget) -> None:
    target.symbols["_PyRuntime"] = 0x20000
    assert target.symbol_address("_PyRuntime") == 0x20000 and target.symbol_address("nope") is None
    assert target.evaluate_address("0x10") == 16 and target.evaluate_address("42") == 42
    assert target.evaluate_address("_PyRuntime") == 0x20000 == target.evaluate_address("&_PyRuntime")
    with pytest.raises(UserError):
        target.evaluate_address("$rdi + 8")


def test_watchpoints_live_only() -> None:
    live = FakeTarget()
    hits: list[WatchHit] = []
    handle = live.watch_write(0x1000, 8, lambda hit: hits.append(hit) is not None)
    assert live.fire(handle, tid=7, pc=0x401234) is False
    assert hits == [WatchHit(7, 0x401234)]
    live.remove(handle)
    assert live.watchpoints == {}
    core = FakeTarget(TargetKind.CORE)
    with pytest.raises(Exception, match="core"):
        core.watch_write(0x1000, 8, lambda hit: True)


class _Minimal(Target):
    """A target implementing only the required members: the optional ones keep their defaults."""

    debugger = "minimal"
    kind = TargetKind.LIVE


def test_optional_capabilities_have_documented_defaults() -> None:
    target = _Minimal()
    assert target.read_granule == 4096
    assert target.section_of(0x1000) is None
    assert target.stop_reason() is None and target.stop_register("rip") is None and target.stop_frame(0) is None
    assert read_stop_info(target) is None
    target.safe_point(), target.forget_symbols(), target.forget_process()  # nothing to do by default
    assert Memory(target).PAGE == 4096
    fake = FakeTarget()
    fake.granule = 512
    fake.sections.append((0x1000, 0x2000, ".data", "/lib/libpython.so"))
    assert Memory(fake).PAGE == 512
    assert fake.section_of(0x1800) == (".data", "/lib/libpython.so")
    assert fake.section_of(0x2000) is None
