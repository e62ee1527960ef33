"""The adapters' shared symbol cache: one entry per (pc, inline level), bounded."""

from __future__ import annotations

from pylife.frame_symbols import FrameSymbols


def test_inlined_frames_at_one_pc_are_told_apart_and_cached() -> None:
    symbols = FrameSymbols()
    calls: list[str] = []

    def compute(name: str):
        return lambda: (calls.append(name) or name, None, None, None)

    lookup = symbols.unwind()
    # Py_INCREF inlined into the eval loop: two frames at pc 0x10, then a caller.
    assert [lookup(0x10, compute("Py_INCREF"))[0], lookup(0x10, compute("_PyEval_EvalFrameDefault"))[0],
            lookup(0x20, compute("main"))[0]] == ["Py_INCREF", "_PyEval_EvalFrameDefault", "main"]
    again = symbols.unwind()
    assert [again(0x10, compute("x"))[0], again(0x10, compute("y"))[0]] == ["Py_INCREF", "_PyEval_EvalFrameDefault"]
    assert calls == ["Py_INCREF", "_PyEval_EvalFrameDefault", "main"]
    symbols.clear()
    assert symbols.unwind()(0x10, compute("new"))[0] == "new"


def test_cache_is_bounded() -> None:
    symbols = FrameSymbols()
    symbols.MAX_ENTRIES = 4
    for pc in range(10):
        symbols.unwind()(pc, lambda: ("f", None, None, None))
    assert len(symbols._cache) <= 4
