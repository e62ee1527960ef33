"""Which call handed the interpreter the reference it releases (pylife.cpython.handoff), on fake memory per layout."""

from __future__ import annotations

import pytest

from pylife.cpython.frames import CodeCache, PyFrame, first_frame, walk
from pylife.cpython.handoff import call_release

from .builders import FakePython
from .support import objects_of
from .test_bytecode import units
from .test_pyexpr import _write_code_names, _write_frame

TID = 4242
C_FUNCTION = 0x7F00_0AAA_0000  # the extension's get_borrowed
EXT = "/x/ext.cpython-312-x86_64-linux-gnu.so"
LOCALS = ["registry", "db"]


def _calls(key: tuple[int, int], store: bool = True) -> list[tuple[str, int]]:
    """`db = ext.get_borrowed(registry, "k"); del db` as each version compiles it (co_names: ext, get_borrowed)."""
    if key < (3, 11):
        ops = [("LOAD_GLOBAL", 0), ("LOAD_METHOD", 1), ("LOAD_FAST", 0), ("LOAD_CONST", 0), ("CALL_METHOD", 2)]
    elif key == (3, 11):
        ops = [("LOAD_GLOBAL", 0), ("LOAD_METHOD", 1), ("LOAD_FAST", 0), ("LOAD_CONST", 0), ("PRECALL", 2), ("CALL", 2)]
    else:  # 3.12+: LOAD_ATTR's oparg is the name index << 1 | method bit
        ops = [("LOAD_GLOBAL", 0), ("LOAD_ATTR", 3), ("LOAD_FAST", 0), ("LOAD_CONST", 0), ("CALL", 2)]
    return ops + ([("STORE_FAST", 1), ("DELETE_FAST", 1)] if store else [("POP_TOP", 0)])


def _scene(py: FakePython, ops: list[tuple[str, int]], *, builtin: bool = True) -> PyFrame:
    """A frame of code ``ops`` standing on its last instruction, its globals holding module ext."""
    bytecode = units(py.key, *ops)
    code = py.code("scenario", "/src/app.py", 10, code_units=len(bytecode) // 2)
    if "PyCodeObject.co_code_adaptive" in py.off:
        py.t.write(code + py.o("PyCodeObject.co_code_adaptive"), bytecode)
    else:
        py.t.write_u64(code + py.o("PyCodeObject.co_code"), py.bytes(bytecode))
    py.t.write_u64(code + py.o("PyCodeObject.co_names"), py.tuple([py.str("ext"), py.str("get_borrowed")]))
    _write_code_names(py, code, LOCALS, [], [])
    if builtin:
        tp = py.static_type("builtin_function_or_method", flags=1 << 14, basicsize=56, itemsize=0)
        method_def = py.heap.alloc(32)
        py.t.write_u64(method_def, py.cstring(b"get_borrowed"))
        py.t.write_u64(method_def + 8, C_FUNCTION)
        function = py.new_object(tp, 56)
        py.t.write_u64(function + py.o("PyObject.size"), method_def)
        py.t.functions[C_FUNCTION] = ("buggy_get_borrowed", EXT)
    else:  # a Python function: no C function to name
        function = py.function("get_borrowed")
    module = py.module("ext")
    py.t.write_u64(module + py.o("PyModuleObject.md_dict"),
                   py.dict([(py.str("__name__"), py.str("ext")), (py.str("get_borrowed"), function)]))
    last = len(bytecode) // 2 - 1
    tstate = py.python_thread(TID, [(code, last)], slots=len(LOCALS) + 4)
    objects = objects_of(py)
    frame = next(walk(objects.mem, objects, CodeCache(objects), first_frame(objects.mem, objects, tstate)))
    _write_frame(py, frame.address, py.dict([(py.str("ext"), module)]), py.dict([]), [py.dict([]), 0])
    return frame


def test_a_local_stored_from_a_builtin_call_names_its_c_function(py: FakePython) -> None:
    frame = _scene(py, _calls(py.key))
    found = call_release(py.t, objects_of(py), frame)
    assert found is not None
    assert (found.op, found.local, found.callee, found.function, found.module) == (
        "DELETE_FAST", "db", "ext.get_borrowed", "buggy_get_borrowed", EXT)
    # The call's span: the watch was set before it when no frame stood between its start and the release.
    assert found.call < frame.instr_index < found.release_end  # type: ignore[operator]


def test_a_call_result_popped_at_once(py: FakePython) -> None:
    frame = _scene(py, _calls(py.key, store=False))
    found = call_release(py.t, objects_of(py), frame)
    assert found is not None and (found.op, found.local, found.function) == ("POP_TOP", None, "buggy_get_borrowed")


@pytest.mark.parametrize("why", ["python callee", "another local", "a jump lands on the release", "no call"])
def test_no_proof_no_facts(py: FakePython, why: str) -> None:
    ops = _calls(py.key)
    builtin = True
    if why == "python callee":
        builtin = False
    elif why == "another local":
        ops[-1] = ("DELETE_FAST", 0)
    elif why == "a jump lands on the release":
        ops.insert(0, ("JUMP_FORWARD", 0))  # lands on the next unit; made to land on DELETE_FAST below
        size = len(units(py.key, *ops[1:-1]))  # bytes between the jump and the release
        ops[0] = ("JUMP_FORWARD", size if py.key < (3, 10) else size // 2)
    else:
        ops = [("LOAD_FAST", 0), ("STORE_FAST", 1), ("DELETE_FAST", 1)]
    frame = _scene(py, ops, builtin=builtin)
    assert call_release(py.t, objects_of(py), frame) is None
