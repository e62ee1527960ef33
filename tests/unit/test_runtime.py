"""runtime.detect: which CPython, from _Py_DebugOffsets, Py_Version or the libpython name + sys.version."""

from __future__ import annotations

import pytest

from pylife.commands import CommandFailed, execute
from pylife.cpython import debug_offsets
from pylife.cpython.layout import PythonVersion
from pylife.cpython.runtime import detect, interpreters, main_interpreter
from pylife.errors import Unsupported
from pylife.target import Memory, Module, TargetKind

from .builders import LAYOUT_KEYS, RELEASES, FakePython
from .fakes import FakeTarget
from .support import info_json, run_json, session_of


def _version(py: FakePython) -> dict[str, object]:
    return run_json(py, ["version"])


def test_version_of_every_layout(py: FakePython) -> None:
    data = _version(py)
    release = RELEASES[py.key]
    assert data["version"] == f"{py.key[0]}.{py.key[1]}.{release.micro}"
    assert (data["major"], data["minor"], data["micro"]) == (*py.key, release.micro)
    assert data["build"] == "release" and data["threading"] == "GIL"
    assert data["runtime_address"] == py.runtime
    assert str(data["libpython"]).endswith(f"libpython{py.key[0]}.{py.key[1]}.so.1.0")
    assert data["linked_into_executable"] is False
    assert data["target"] == "live" and data["debugger"] == "fake"
    assert data["warnings"] == []
    source = str(data["layout_source"])
    assert ("_Py_DebugOffsets" in source) is (py.key >= (3, 13))


def test_3_13_version_comes_from_debug_offsets() -> None:
    py = FakePython((3, 13), py_version=False, libpython=False)
    py.target.module_list[0] = Module("/usr/bin/python3", 0)  # no version in any name
    data = _version(py)
    assert data["version"] == "3.13.0" and "_Py_DebugOffsets" in str(data["layout_source"])


def test_debug_offsets_win_over_py_version() -> None:
    py = FakePython((3, 13))
    py.t.write_u32(py.t.symbols["Py_Version"], 0x030C05F0)
    assert _version(py)["version"] == "3.13.0"


def test_3_13_without_cookie_falls_back_to_py_version() -> None:
    py = FakePython((3, 13))
    py.write_debug_offsets(cookie=b"xxxxxxxx")
    data = _version(py)
    assert data["version"] == "3.13.0" and "_Py_DebugOffsets" not in str(data["layout_source"])


@pytest.mark.parametrize("key", [(3, 11), (3, 12)], ids=["3.11", "3.12"])
def test_version_from_py_version(key: tuple[int, int]) -> None:
    py = FakePython(key, libpython=False)
    py.target.module_list[0] = Module("/usr/bin/python3", 0)
    data = _version(py)
    assert data["version"] == f"3.{key[1]}.{RELEASES[key].micro}"
    assert data["libpython"] is None and data["linked_into_executable"] is True


@pytest.mark.parametrize("key", [(3, 8), (3, 9), (3, 10)], ids=["3.8", "3.9", "3.10"])
def test_version_from_soname_and_sys_version(key: tuple[int, int]) -> None:
    py = FakePython(key)
    assert _version(py)["micro"] == RELEASES[key].micro


@pytest.mark.parametrize("key", [(3, 8), (3, 9), (3, 10)], ids=["3.8", "3.9", "3.10"])
def test_version_from_executable_name(key: tuple[int, int]) -> None:
    py = FakePython(key, libpython=False)
    data = _version(py)
    assert data["version"] == f"3.{key[1]}.{RELEASES[key].micro}"
    assert data["libpython"] is None and str(data["executable"]).endswith(f"python3.{key[1]}")


@pytest.mark.parametrize("sys_version", ["", "garbage", "3.7.17 (default)", "2.7.18"])
def test_micro_unknown_without_a_matching_sys_version(sys_version: str) -> None:
    py = FakePython((3, 9), sys_version=sys_version)
    data = _version(py)
    assert data["version"] == "3.9.?" and data["micro"] is None


def test_micro_read_from_the_main_interpreter() -> None:
    """The main interpreter is the oldest one, the last on the list."""
    py = FakePython((3, 10))
    sub = py.new_interpreter()
    py.t.write_u64(sub + py.o("PyInterpreterState.sysdict"), 0xDEADBEEF)
    session = session_of(py)
    mem = session.memory()
    runtime = session.runtime(mem)
    assert runtime.version.micro == 13
    assert list(interpreters(mem, runtime)) == [sub, py.interp]
    assert main_interpreter(mem, runtime) == py.interp


def test_interpreter_list_cycle_is_bounded(py: FakePython) -> None:
    py.t.write_u64(py.interp + py.o("PyInterpreterState.next"), py.interp)
    session = session_of(py)
    mem = session.memory()
    runtime = session.runtime(mem)
    assert list(interpreters(mem, runtime)) == [py.interp]
    assert info_json(py, py.value([1]))["gc"] == {"tracked": True, "generation": 0}


@pytest.mark.parametrize("kind", [TargetKind.LIVE, TargetKind.CORE])
def test_no_runtime_is_unsupported(kind: TargetKind) -> None:
    py = FakePython((3, 12), kind=kind, runtime=False)
    with pytest.raises(Unsupported) as caught:
        detect(py.target, Memory(py.target))
    message = str(caught.value)
    assert "_PyRuntime" in message
    if kind is TargetKind.CORE:
        assert "core" in message and "executable" in message
    else:
        assert "process" in message
    data = run_json(py, ["version"])
    assert set(data) == {"error"} and data["error"] == message
    with pytest.raises(CommandFailed) as failed:
        execute(session_of(py), ["info", "0x1000"])
    assert str(failed.value) == f"pylife: {message}"


def test_live_and_core_messages_differ() -> None:
    messages = []
    for kind in (TargetKind.LIVE, TargetKind.CORE):
        with pytest.raises(Unsupported) as caught:
            detect(FakeTarget(kind), Memory(FakeTarget(kind)))
        messages.append(str(caught.value))
    assert messages[0] != messages[1]


def test_runtime_without_any_version_hint() -> None:
    py = FakePython((3, 10), libpython=False)
    py.target.module_list[0] = Module("/usr/bin/python3", 0)
    data = run_json(py, ["version"])
    assert "cannot tell the CPython version" in str(data["error"])


def test_real_3_13_debug_offsets_agree_with_the_table() -> None:
    py = FakePython((3, 13))
    session = session_of(py)
    layout = session.runtime().layout
    assert layout.warnings == []
    assert layout["PyInterpreterState.sysdict"] == 7640 and layout["_PyRuntimeState.interpreters_head"] == 632


def test_disagreeing_debug_offsets_warn() -> None:
    py = FakePython((3, 13))
    py.write_debug_offsets({("code_object", "firstlineno"): 72, ("pyobject", "size"): 32})
    data = _version(py)
    assert len(data["warnings"]) == 1
    warning = str(data["warnings"][0])
    assert "PyCodeObject.co_firstlineno" in warning and "PyObject.size" in warning
    text = execute(session_of(py), ["version"])
    assert text.startswith("warning: _Py_DebugOffsets differ")
    info = execute(session_of(py), ["info", hex(py.value([1]))])
    assert info.startswith("warning: ")


@pytest.mark.parametrize(("version", "words"), [
    (0x031000F0, "no layout for CPython 3.16"),
    (0x02070000, "no layout for CPython 2.7"),
])
def test_debug_offsets_of_an_unknown_version(version: int, words: str) -> None:
    py = FakePython((3, 13))
    py.write_debug_offsets(version=version)
    assert words in str(run_json(py, ["version"])["error"])


def test_debug_build_from_the_soname() -> None:
    py = FakePython((3, 12))
    py.target.module_list[1] = Module("/opt/py/lib/libpython3.12d.so.1.0", 0)
    data = _version(py)
    assert data["build"] == "debug" and any("debug build" in str(w) for w in data["warnings"])


def test_debug_build_from_py_ref_debug_symbol_without_a_named_image() -> None:
    py = FakePython((3, 12), libpython=False)
    py.target.module_list[0] = Module("/usr/bin/python3", 0)
    assert _version(py)["build"] == "release"
    py.t.symbols["_Py_RefTotal"] = py.static.alloc(8)
    data = _version(py)
    assert data["build"] == "debug" and any("debug build" in str(w) for w in data["warnings"])


def test_unreadable_runtime() -> None:
    for key in LAYOUT_KEYS:
        py = FakePython(key)
        hole = py.static.skip_pages(1)
        py.t.symbols["_PyRuntime"] = hole
        data = run_json(py, ["version"])
        if "error" not in data:
            assert data["runtime_address"] == hole
        info = info_json(py, py.value([1, 2]))
        assert "error" in info or info["gc"]["generation"] is None


# ---- pure helpers ------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (0x030D00F0, "3.13.0"), (0x030C01F0, "3.12.1"), (0x030D00A2, "3.13.0a2"), (0x030B00C1, "3.11.0rc1"),
    (0x030E00B3, "3.14.0b3"),
])
def test_python_version_from_hex(value: int, text: str) -> None:
    assert str(PythonVersion.from_hex(value)) == text


def test_debug_offsets_parsing() -> None:
    py = FakePython((3, 13))
    blob = py.t.read(py.runtime, debug_offsets.size_for(0x030D00F0))
    assert debug_offsets.size_for(0x030D00F0) == 584  # sizeof(_Py_DebugOffsets) in 3.13.0
    assert debug_offsets.parse_header(blob) == (0x030D00F0, False)
    assert debug_offsets.parse_header(blob[:23]) is None
    assert debug_offsets.parse_header(b"ydebugpy" + blob[8:]) is None
    offsets = debug_offsets.parse_offsets(blob, 0x030D00F0)
    assert offsets is not None
    assert offsets["PyASCIIObject.size"] == 40 and offsets["PyInterpreterState.gc"] == 7400
    assert offsets["_PyInterpreterFrame.owner"] == 70 and offsets["PyTypeObject.tp_flags"] == 168
    assert debug_offsets.parse_offsets(blob, 0x030C00F0) is None
    assert debug_offsets.parse_offsets(blob[:100], 0x030D00F0) is None


@pytest.mark.parametrize(("key", "size", "expected"), [
    # sizeof(_Py_DebugOffsets) and entries read by `p _PyRuntime.debug_offsets` on sid's builds.
    ((3, 14), 760, {"_PyInterpreterFrame.stackpointer": 64, "_PyInterpreterFrame.owner": 74,
                    "PyThreadState.current_frame": 72, "PyTupleObject.ob_item": 32, "PySetObject.table": 40,
                    "_gc_runtime_state.collecting": 192, "_PyRuntimeState.interpreters_head": 808}),
    ((3, 15), None, {"_PyInterpreterFrame.stackpointer": 64, "PyThreadState.thread_id": 176,
                     "PyTypeObject.tp_basicsize": 32, "PyCompactUnicodeObject.size": 56,
                     "_gc_runtime_state.collecting": 112, "_PyRuntimeState.interpreters_head": 936}),
])
def test_debug_offsets_of_3_14_and_3_15(key: tuple[int, int], size: int | None, expected: dict[str, int]) -> None:
    """3.14 and 3.15 add entries and whole groups: the parser reads each where that version has it."""
    py = FakePython(key)
    version = py.release.hexversion
    if size is not None:
        assert debug_offsets.size_for(version) == size
    offsets = debug_offsets.parse_offsets(py.t.read(py.runtime, debug_offsets.size_for(version)), version)
    assert offsets is not None and {name: offsets[name] for name in expected} == expected
    assert offsets == {name: value for name, value in offsets.items() if py.off.get(name) == value}, \
        "the target's _Py_DebugOffsets agree with the DWARF table"
    data = run_json(py, ["version"])
    assert data["layout_source"].startswith("_Py_DebugOffsets") and not data["warnings"], data
