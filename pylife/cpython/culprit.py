"""The culprit frame: the innermost frame of the user's own code on a merged stack.

A refcount write or a crash is made by CPython helpers (``dict_subscript``,
``list_ass_slice``, ``PyList_Append``, an inlined ``Py_DECREF``) on behalf
of someone: the culprit is the first frame, innermost first, that is neither
the interpreter (libpython or a python executable), nor the C library and
loader, nor one of CPython's own extension modules (``lib-dynload``, the
standard library's ``_json``, ``_ctypes``...), nor a Python file of the
standard library: that is, a function in a user's shared object or Python
file. Frames are the JSON dicts of ``pylife bt --json`` (kind, function,
file, line, module).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from ..frame_text import frame_site
from .stack import is_core_image

# The C runtime and loader, whatever their version suffix.
_SYSTEM_LIBRARY = re.compile(r"^(libc|ld-linux[-\w]*|ld|libpthread|libm|libdl|librt|libgcc_s|libstdc\+\+|"
                             r"libutil|libz|libffi|libssl|libcrypto|libexpat|libbz2|liblzma|libuuid)[.-]")
# CPython's extension modules are named after their module: "_json.cpython-312-x86_64-linux-gnu.so".
_STDLIB_MODULES: frozenset[str] = frozenset(getattr(sys, "stdlib_module_names", ()))  # the host's list (3.10+)
# Python files of the standard library: lib/pythonX.Y/..., but not its site-packages.
_STDLIB_FILE = re.compile(r"/lib(64)?/python\d+\.\d+[a-z]*/(?!(site|dist)-packages/)")
# Static inline helpers of CPython's headers: at -O0 they are frames of their own, and a crash in
# one (Py_REFCNT(ob) reading a NULL ob) is a crash in the caller that handed it the pointer.
HEADER_HELPERS = re.compile(r"^_?Py_(REFCNT|TYPE|SIZE|IS_TYPE|IsImmortal|X?INCREF|X?DECREF|X?NewRef|SET_REFCNT|"
                            r"SET_TYPE|SET_SIZE|INCREF_IncRefTotal|DECREF_DecRefTotal)$|^_?PyObject_(TypeCheck|CAST)$|"
                            r"^Py(Tuple|List)_(GET|SET)_(ITEM|SIZE)$|^_PyObject_CAST_CONST$")
# Inline helpers compiled into the user's object from CPython's headers (Py_DECREF in object.h).
_CPYTHON_HEADER = re.compile(r"(^|/)include/python\d+\.\d+[a-z]*/|^\./Include/|^Include/")


def _module_name(module: str) -> str:
    base = module.rsplit("/", 1)[-1]
    return base.split(".", 1)[0]


def is_user_frame(frame: Mapping[str, Any]) -> bool:
    """A frame of the user's code (see the module docstring)."""
    if frame.get("kind") == "python":
        file = frame.get("file")
        if not file or str(file).startswith("<"):
            return False  # <frozen importlib._bootstrap>, <string>
        return not _STDLIB_FILE.search(str(file))
    module = frame.get("module")
    if not module:
        return False  # no image: cannot say whose it is
    module = str(module)
    base = module.rsplit("/", 1)[-1]
    if is_core_image(base) or _SYSTEM_LIBRARY.match(base) or "/lib-dynload/" in module:
        return False
    if _module_name(base) in _STDLIB_MODULES:
        return False
    file = frame.get("file")
    if HEADER_HELPERS.match(str(frame.get("function") or "")):
        return False
    return not (file and _CPYTHON_HEADER.search(str(file)))


def culprit(stack: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The innermost user frame of a merged stack (innermost first), or None."""
    for frame in stack:
        if is_user_frame(frame):
            return {"kind": frame.get("kind"), "function": frame.get("function"), "file": frame.get("file"),
                    "line": frame.get("line"), "module": frame.get("module")}
    return None


def describe(frame: Mapping[str, Any] | None) -> str:
    """One line for text output: ``buggy_leak (buggy.c:35)``; "unknown" without a culprit."""
    if not frame:
        return "unknown"
    return frame_site(frame.get("function"), frame.get("file"), frame.get("line"), basename=True)
