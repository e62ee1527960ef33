"""Freed while still referenced: the bounded scan of the GC lists (cpython/referrers.py)."""

from __future__ import annotations

from pylife.cpython.referrers import find_referrers

from .builders import FakePython
from .support import session_of


def _scan(py: FakePython, address: int, **budget: float) -> tuple[list[str], bool]:
    session = session_of(py)
    mem = session.memory()
    found = find_referrers(mem, session.runtime(mem), session.objects(mem), address, **budget)  # type: ignore[arg-type]
    return found.found, found.complete


def test_containers_that_still_point_at_it(py: FakePython) -> None:
    victim = py.float(1.5)
    other = py.float(2.5)
    registry = py.dict([(py.str("db"), victim), (py.str("other"), other)])
    holder = py.list([other, victim])
    pair = py.tuple([victim, other])
    py.dict([(py.str("unrelated"), other)])
    found, complete = _scan(py, victim)
    assert complete
    assert f"dict {registry:#x} (key 'db')" in found
    assert f"list {holder:#x} (index 1)" in found
    assert f"tuple {pair:#x} (index 0)" in found
    assert len(found) == 3


def test_an_instance_member_and_the_sentence(py: FakePython) -> None:
    victim = py.float(1.5)
    cls = py.heap_type("Holder", "app", flags=py.facts["Slotted"][0], basicsize=24)
    holder = py.instance(cls)
    py.t.write_u64(holder + 16, victim)  # its one slot
    session = session_of(py)
    mem = session.memory()
    found = find_referrers(mem, session.runtime(mem), session.objects(mem), victim)
    assert found.found == [f"app.Holder {holder:#x} (at +0x10)"]
    assert found.sentence(victim) == f"freed while app.Holder {holder:#x} (at +0x10) still points to it"


def test_nothing_points_at_it(py: FakePython) -> None:
    victim = py.float(1.5)
    py.list([py.float(2.0)])
    found, complete = _scan(py, victim)
    assert found == [] and complete


def test_the_scan_is_bounded(py: FakePython) -> None:
    victim = py.float(1.5)
    for _ in range(5):
        py.list([py.float(2.0)])
    py.list([victim])
    found, complete = _scan(py, victim, max_objects=3)
    assert found == [] and not complete
