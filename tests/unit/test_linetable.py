"""Line-table decoders against what each CPython reports for its own bytecode.

tests/unit/data/linetables.json was produced by tests/fixtures/dump_linetables.py
under CPython 3.8-3.13 (co_lnotab, the 3.10 linetable and the 3.11+ location table).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pylife.cpython import linetable
from pylife.cpython.frames import CodeInfo, line_for

CASES = json.loads((Path(__file__).parent / "data" / "linetables.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=lambda c: "{}.{}".format(*c["version"]))
def test_every_instruction_gets_cpythons_line(case: dict) -> None:
    key = tuple(case["version"])
    code = CodeInfo(0, "sample", "sample", "f.py", case["first_line"], bytes.fromhex(case["table"]), 0, 0)
    mismatches = [(offset, want, line_for(key, code, offset // 2))
                  for offset, want in case["lines"] if line_for(key, code, offset // 2) != want]
    assert len(case["lines"]) > 10
    assert mismatches == []


@pytest.mark.parametrize("junk", [b"", b"\x00", b"\x7f" * 9, bytes(range(256)), b"\xff" * 64])
def test_junk_tables_never_raise(junk: bytes) -> None:
    for index in (-1, 0, 3, 1000):
        linetable.line_from_lnotab(junk, 1, index)
        linetable.line_from_linetable_310(junk, 1, index)
        linetable.line_from_locations_311(junk, 1, index)
    assert linetable.line_from_locations_311(b"", 5, 0) is None


def test_location_table_forms() -> None:
    # One-unit entries: code 13 (svarint +3), code 11 (+1, two column bytes), code 15 (no location).
    table = bytes([0x80 | (13 << 3), 6]) + bytes([0x80 | (11 << 3), 0, 0]) + bytes([0x80 | (15 << 3)])
    assert [line for _s, _e, line in linetable.locations_311(table, 10)] == [13, 14, None]
