from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

import pylife.commands

from .builders import LAYOUT_KEYS, FakePython

_real_build_parser = pylife.commands.build_parser
_parser: argparse.ArgumentParser | None = None


def _cached_build_parser() -> argparse.ArgumentParser:
    global _parser
    if _parser is None:
        _parser = _real_build_parser()
    return _parser


@pytest.fixture(autouse=True)
def _reuse_the_cli_parser(request: pytest.FixtureRequest) -> Iterator[None]:
    """execute() builds its argparse parser per call (~4 ms, mostly gettext look-ups).

    The parser holds no per-call state, so the unit tests share one, which keeps
    ~1000 execute() calls fast; test_cli.py builds it fresh every time.
    """
    if request.module.__name__.endswith("test_cli"):
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pylife.commands, "build_parser", _cached_build_parser)
        yield


def _id(key: tuple[int, int]) -> str:
    return f"{key[0]}.{key[1]}"


@pytest.fixture(params=LAYOUT_KEYS, ids=_id)
def key(request: pytest.FixtureRequest) -> tuple[int, int]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def py(key: tuple[int, int]) -> FakePython:
    """A fresh fake CPython process image, once per layout (3.8 ... 3.13)."""
    return FakePython.fresh(key)
