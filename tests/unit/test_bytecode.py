"""Reading bytecode (pylife.cpython.bytecode): instructions, inline caches, EXTENDED_ARG, jump targets."""

from __future__ import annotations

from pylife.cpython.bytecode import at, decode, jump_targets
from pylife.cpython.bytecode_generated import BASE, CACHES
from pylife.cpython.opcodes_generated import OPNAMES


def units(key: tuple[int, int], *ops: tuple[str, int]) -> bytes:
    """Code units for ``ops`` (name, oparg), each followed by its inline caches (zeros)."""
    numbers = {name: number for number, name in OPNAMES[key].items()}
    out = b""
    for name, arg in ops:
        base = BASE.get(key, {}).get(name, name)
        out += bytes([numbers[name], arg]) + b"\0\0" * CACHES.get(key, {}).get(base, 0)
    return out


def test_312_caches_and_specialized_forms_read_as_their_base() -> None:
    key = (3, 12)
    code = units(key, ("LOAD_GLOBAL", 13), ("LOAD_ATTR_MODULE", 9), ("LOAD_FAST", 2), ("CALL", 1),
                 ("STORE_FAST", 4), ("DELETE_FAST", 4))
    found = decode(code, key)
    assert [(i.name, i.arg) for i in found] == [("LOAD_GLOBAL", 13), ("LOAD_ATTR", 9), ("LOAD_FAST", 2), ("CALL", 1),
                                               ("STORE_FAST", 4), ("DELETE_FAST", 4)]
    # LOAD_GLOBAL has 4 cache units, LOAD_ATTR 9, CALL 3 (3.12's dis._inline_cache_entries).
    assert [i.index for i in found] == [0, 5, 15, 16, 20, 21]
    assert all(i.end == j.index for i, j in zip(found, found[1:]))
    assert at(found, 20) == 4 and at(found, 17) is None and jump_targets(found, key) == set()


def test_38_extended_arg_widens_the_next_oparg_and_jumps_count_bytes() -> None:
    key = (3, 8)
    code = units(key, ("EXTENDED_ARG", 1), ("LOAD_CONST", 2), ("JUMP_ABSOLUTE", 8), ("JUMP_FORWARD", 4),
                 ("POP_TOP", 0), ("NOP", 0), ("POP_TOP", 0))
    found = decode(code, key)
    assert (found[0].start, found[0].index, found[0].name, found[0].arg) == (0, 1, "LOAD_CONST", 0x102)
    assert at(found, 0) == 0 and at(found, 1) == 0
    # JUMP_ABSOLUTE 8 (bytes) -> unit 4; JUMP_FORWARD 4 from unit 4 -> unit 4 + 2.
    assert {4, 6} <= jump_targets(found, key)


def test_311_backward_jumps_count_back_from_the_next_instruction() -> None:
    key = (3, 11)
    code = units(key, ("NOP", 0), ("LOAD_FAST", 0), ("JUMP_BACKWARD", 2))
    found = decode(code, key)
    assert jump_targets(found, key) == {1, 2}  # end 3 - 2 = 1, and the unit after it


def test_unknown_opcodes_never_match() -> None:
    assert [i.name for i in decode(bytes([255, 0]), (3, 12))] == ["?"]
    assert decode(b"", (3, 12)) == []
