"""Corrupted _Py_DebugOffsets in a real 3.13 process, in gdb and lldb-16: written before
pylife's first command, they are checked, ignored with a warning, and the generated
table answers (the frame walk and type reading gave tracebacks before)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .driver import Session, run_session
from .environment import DEBUGGERS, FIXTURE
from .once import once, require, shared_root

# 3.13.0 _Py_DebugOffsets: 24-byte header, then uint64 entries; interpreter_frame.size
# is entry 25, type_object.tp_name entry 44 (Include/internal/pycore_runtime.h).
CORRUPTIONS = {"frame_size": (24 + 8 * 25, 1 << 63), "tp_name": (24 + 8 * 44, 200)}
WRITE = {"gdb": "set {{unsigned long}}((char *)&_PyRuntime + {offset}) = {value:#x}",
         "lldb": "expression -- *(unsigned long *)((char *)&_PyRuntime + {offset}) = {value:#x}"}
COMMANDS = [("version", "pylife version --json"), ("info", "pylife info {list} --json"),
            ("info_text", "pylife info {list}"), ("bt", "pylife bt --json")]


def _session(root: Path, debugger: str, corruption: str) -> Session:
    python = require(debugger, "3.13")

    def make(workdir: Path) -> Session:
        truth = workdir / "truth.json"
        offset, value = CORRUPTIONS[corruption]
        setup = ["run"] if debugger == "gdb" else ["process launch"]
        commands = [("corrupt", WRITE[debugger].format(offset=offset, value=value)), *COMMANDS]
        return run_session(debugger, "live", workdir, setup, commands, program=[str(python), str(FIXTURE), str(truth)],
                           truth=truth)

    return once(root, f"offsets-{debugger}-{corruption}", make)


@pytest.fixture(scope="module")
def offsets_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_root(tmp_path_factory, "pylife-offsets")


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
@pytest.mark.parametrize("debugger", [pytest.param(d, marks=getattr(pytest.mark, d)) for d in DEBUGGERS])
def test_corrupt_debug_offsets_fall_back_to_the_table(offsets_root: Path, debugger: str, corruption: str) -> None:
    session = _session(offsets_root, debugger, corruption)
    assert session.record("corrupt").error is None, session.describe()
    version = session.json("version")
    assert any("look corrupt" in w for w in version["warnings"]), version
    assert "_Py_DebugOffsets" not in version["layout_source"], version
    truth = session.truth["objects"]["list"]  # type: ignore[index]
    info = session.json("info")
    assert info.get("type") == "list" and info.get("preview") == truth["preview"], info
    assert session.record("info_text").output.startswith("warning: _Py_DebugOffsets in the target look corrupt")
    frames = [f for t in session.json("bt")["threads"] for f in t["frames"] if f["kind"] == "python"]
    assert frames and frames[-1]["function"] == "<module>", frames
