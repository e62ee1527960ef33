"""Line numbers from code objects' line tables, one decoder per format.

- 3.8/3.9 ``co_lnotab`` (Objects/lnotab_notes.txt): (addr delta, line delta) byte pairs.
- 3.10 ``co_linetable`` (Objects/lnotab_notes.txt, PEP 626): (start delta, line delta) pairs,
  line delta -128 meaning "no line".
- 3.11+ location table (Objects/locations.md): entries led by a byte with bit 7 set.

All decoders take untrusted bytes and never raise on junk; they return None
when no line can be given. Offsets are in bytes of bytecode (code unit = 2).
"""

from __future__ import annotations

from collections.abc import Iterator


def line_from_lnotab(table: bytes, first_line: int, byte_offset: int) -> int | None:
    """3.8/3.9: f_lasti (a byte offset) -> line."""
    line = first_line
    address = 0
    for i in range(0, len(table) - 1, 2):
        address += table[i]
        if address > byte_offset:
            break
        delta = table[i + 1]
        line += delta - 256 if delta >= 128 else delta
    return line


def line_from_linetable_310(table: bytes, first_line: int, byte_offset: int) -> int | None:
    """3.10: byte offset of the instruction -> line (None for "no line")."""
    line = first_line
    end = 0
    for i in range(0, len(table) - 1, 2):
        start = end
        end += table[i]
        delta = table[i + 1]
        delta = delta - 256 if delta >= 128 else delta
        current: int | None
        if delta == -128:
            current = None
        else:
            line += delta
            current = line
        if start <= byte_offset < end:
            return current
    return None


def _varint(table: bytes, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while pos < len(table):
        byte = table[pos]
        pos += 1
        value |= (byte & 63) << shift
        shift += 6
        if not byte & 64:
            break
    return value, pos


def _svarint(table: bytes, pos: int) -> tuple[int, int]:
    value, pos = _varint(table, pos)
    return (-(value >> 1) if value & 1 else value >> 1), pos


def locations_311(table: bytes, first_line: int) -> Iterator[tuple[int, int, int | None]]:
    """3.11+: yield (start unit, end unit, line or None) for each entry."""
    pos = 0
    unit = 0
    line = first_line
    while pos < len(table):
        head = table[pos]
        pos += 1
        if not head & 0x80:
            return  # not an entry start: junk
        code = (head >> 3) & 15
        length = (head & 7) + 1
        current: int | None = line
        if code == 15:
            current = None
        elif code == 14:
            delta, pos = _svarint(table, pos)
            line += delta
            current = line
            for _ in range(3):  # end line delta, column + 1, end column + 1
                _, pos = _varint(table, pos)
        elif code == 13:
            delta, pos = _svarint(table, pos)
            line += delta
            current = line
        elif code >= 10:
            line += code - 10
            current = line
            pos += 2
        else:
            pos += 1
        yield unit, unit + length, current
        unit += length


def line_from_locations_311(table: bytes, first_line: int, unit_index: int) -> int | None:
    """3.11+: instruction index (in code units) -> line."""
    for start, end, line in locations_311(table, first_line):
        if start <= unit_index < end:
            return line
    return None
