"""Python frame walking from thread-state memory, per layout, with hostile frame chains."""

from __future__ import annotations

from .builders import FakePython
from .support import run_json, session_of

TID = 4242


def _thread_frames(py: FakePython, depth: int = 3) -> tuple[int, list[int]]:
    codes = [py.code_with_ops(f"f{i}", "/src/app.py", 10 * i + 1, ["LOAD_FAST", "BUILD_LIST"], 10 * i + 3)
             for i in range(depth)]
    tstate = py.python_thread(TID, [(code, 1) for code in codes])
    py.t.selected_thread = TID
    return tstate, codes


def _python_frames(py: FakePython) -> list[dict]:
    data = run_json(py, ["bt", "--python"], session_of(py))
    (thread,) = data["threads"]
    assert thread["tid"] == TID
    return thread["frames"]


def _frame_addresses(py: FakePython, tstate: int) -> list[int]:
    from pylife.cpython.frames import CodeCache, first_frame, walk

    session = session_of(py)
    mem = session.memory()
    objects = session.objects(mem)
    return [f.address for f in walk(mem, objects, CodeCache(objects), first_frame(mem, objects, tstate))]


def test_names_lines_and_order(py: FakePython) -> None:
    _thread_frames(py)
    frames = _python_frames(py)
    assert [(f["function"], f["file"], f["line"]) for f in frames] == [
        ("f0", "/src/app.py", 3), ("f1", "/src/app.py", 13), ("f2", "/src/app.py", 23)]
    assert all(f["kind"] == "python" for f in frames)


def test_unreadable_link_ends_the_stack_with_a_marked_frame(py: FakePython) -> None:
    tstate, _codes = _thread_frames(py)
    newest = _frame_addresses(py, tstate)[0]
    link = "PyFrameObject.f_back" if "_PyInterpreterFrame.size" not in py.off else "_PyInterpreterFrame.previous"
    py.t.write_u64(newest + py.o(link), 0xDEAD0000)
    frames = _python_frames(py)
    assert frames[0]["function"] == "f0"
    assert frames[-1]["function"].startswith("<unreadable frame at 0xdead0000")
    assert len(frames) == 2


def test_cyclic_chain_is_cut(py: FakePython) -> None:
    tstate, _codes = _thread_frames(py)
    addresses = _frame_addresses(py, tstate)
    link = "PyFrameObject.f_back" if "_PyInterpreterFrame.size" not in py.off else "_PyInterpreterFrame.previous"
    oldest = max(addresses, key=addresses.index)
    py.t.write_u64(oldest + py.o(link), addresses[0])
    frames = _python_frames(py)
    assert [f["function"] for f in frames[:3]] == ["f0", "f1", "f2"]
    assert "loops back" in frames[-1]["function"]


def test_frame_with_garbage_code_pointer(py: FakePython) -> None:
    tstate, _codes = _thread_frames(py)
    addresses = _frame_addresses(py, tstate)
    field = "PyFrameObject.f_code" if "_PyInterpreterFrame.size" not in py.off else "_PyInterpreterFrame.code"
    py.t.write_u64(addresses[1] + py.o(field), 0x4141414141414141)
    frames = _python_frames(py)
    assert frames[0]["function"] == "f0"
    if py.key < (3, 13):  # 3.13+ skips frames whose f_executable is not code (shim frames)
        assert frames[1]["function"].startswith("<")
