"""`pylife info ADDR --json` for every fixture object, against what CPython itself said."""

from __future__ import annotations

from typing import Any

import pytest

from . import params
from .conftest import Sessions
from .driver import OBJECT_NAMES, Session

FIELDS = ("address", "type", "refcnt", "immortal", "size", "gc", "preview")


def expected_info(truth: dict[str, Any], name: str) -> dict[str, Any]:
    obj = truth["objects"][name]
    refs = truth["refs"][name]
    return {
        "address": obj["address"],
        "type": obj["type"],
        "refcnt": refs["refcnt"],
        "immortal": refs["immortal"],
        "size": obj["size"],
        "gc": obj["gc"],
        "preview": obj["preview"],
    }


@pytest.fixture
def session(sessions: Sessions, debugger: str, minor: str, mode: str) -> Session:
    return sessions.get(debugger, minor, mode)


@pytest.mark.parametrize("name", OBJECT_NAMES)
@pytest.mark.parametrize(params.SESSION_ARGS, params.sessions())
def test_info(session: Session, name: str) -> None:
    assert session.truth is not None, f"the fixture wrote no truth\n{session.describe()}"
    data = session.json(f"info:{name}")
    got = {field: data.get(field) for field in FIELDS}
    assert got == expected_info(session.truth, name), f"{name}: full answer {data}"


@pytest.mark.parametrize(params.SESSION_ARGS, params.sessions())
def test_info_accepts_an_expression(session: Session) -> None:
    """`pylife info 0x... + 0` goes through the debugger's expression evaluator."""
    assert session.truth is not None
    data = session.json("info_expression")
    assert data.get("address") == session.truth["objects"]["dict"]["address"]
    assert data.get("type") == "dict"


@pytest.mark.parametrize(params.SESSION_ARGS, params.sessions())
def test_fixture_wrote_every_object(session: Session) -> None:
    assert session.truth is not None, f"the fixture wrote no truth\n{session.describe()}"
    assert sorted(session.truth["objects"]) == sorted(OBJECT_NAMES)


@pytest.mark.parametrize(params.SESSION_ARGS, params.sessions())
def test_instance_size_fits_its_pymalloc_block(session: Session, minor: str) -> None:
    """Independent of the size formula: the block's size class (from its pool header)
    is the allocation rounded up to 16 bytes (3.13 inline values included). A debug
    build's allocator hooks add a 16-byte header and 8 pad bytes (Objects/obmalloc.c)."""
    assert session.truth is not None
    truth = session.truth["objects"]["instance"]
    size = session.json("info:instance")["size"] + (24 if minor.endswith("d") else 0)
    assert size <= truth["block_size_class"] < size + 16, (size, truth["block_size_class"])
