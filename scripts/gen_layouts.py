#!/usr/bin/env python3
"""Generate pylife/cpython/layouts_generated.py from the DWARF of installed CPythons.

Usage:
    python scripts/gen_layouts.py                 # regenerate the table file
    python scripts/gen_layouts.py --check         # compare the table with live DWARF
    python scripts/gen_layouts.py --print 3.12.1  # dump one interpreter's offsets
    python scripts/gen_layouts.py --print 3.11d   # ... or a debug build's

Release builds come from pyenv, and 3.14/3.15 from the Debian sid root made
by scripts/make_sid_root.sh (its gdb 18 reads them, by chroot: $PYLIFE_SID_ROOT);
debug (Py_DEBUG) builds from the system's (or the sid root's) ``/usr/bin/python3.Xd`` (Debian's ``python3.X-dbg``: libpython is linked into
that executable, which keeps its DWARF; gdb would also find separate debug
info under /usr/lib/debug/.build-id). They go into ``DEBUG_TABLES``.

Each logical field has candidate C expressions (names changed across
versions); gdb evaluates them against libpythonX.Y.so with no process. The
first candidate that evaluates wins; a field with no candidate that works is
absent from that version's table (the core treats it as "not in this
version"). When run *inside* gdb (``gdb -batch -x gen_layouts.py``) this file
computes offsets; otherwise it drives gdb once per interpreter.
"""

from __future__ import annotations

import json
import os
import pprint
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# (field name, candidate expressions). `off(T, path)` is offsetof, `size(T)` sizeof.
FIELDS: list[tuple[str, list[str]]] = [
    # --- object header (Include/object.h) ---
    ("PyObject.size", ["size(PyObject)"]),
    ("PyObject.ob_refcnt", ["off(PyObject, ob_refcnt)"]),
    # 8 up to 3.13 (Py_ssize_t, or its union with ob_refcnt_split); 4 in 3.14+, where the
    # uint32_t ob_refcnt shares a 64-bit word with ob_overflow and ob_flags.
    ("PyObject.ob_refcnt_size", ["size(((PyObject *)0)->ob_refcnt)"]),
    ("PyObject.ob_flags", ["off(PyObject, ob_flags)"]),
    ("PyObject.ob_type", ["off(PyObject, ob_type)"]),
    ("PyVarObject.ob_size", ["off(PyVarObject, ob_size)"]),
    ("PyGC_Head.size", ["size(PyGC_Head)"]),
    # --- type objects (Include/cpython/object.h) ---
    ("PyTypeObject.size", ["size(PyTypeObject)"]),
    ("PyTypeObject.tp_name", ["off(PyTypeObject, tp_name)"]),
    ("PyTypeObject.tp_basicsize", ["off(PyTypeObject, tp_basicsize)"]),
    ("PyTypeObject.tp_itemsize", ["off(PyTypeObject, tp_itemsize)"]),
    ("PyTypeObject.tp_dealloc", ["off(PyTypeObject, tp_dealloc)"]),
    ("PyTypeObject.tp_flags", ["off(PyTypeObject, tp_flags)"]),
    ("PyTypeObject.tp_base", ["off(PyTypeObject, tp_base)"]),
    ("PyTypeObject.tp_dict", ["off(PyTypeObject, tp_dict)"]),
    ("PyTypeObject.tp_mro", ["off(PyTypeObject, tp_mro)"]),
    ("PyTypeObject.tp_is_gc", ["off(PyTypeObject, tp_is_gc)"]),
    ("PyHeapTypeObject.ht_name", ["off(PyHeapTypeObject, ht_name)"]),
    ("PyHeapTypeObject.ht_qualname", ["off(PyHeapTypeObject, ht_qualname)"]),
    ("PyHeapTypeObject.ht_module", ["off(PyHeapTypeObject, ht_module)"]),
    # --- str (Include/cpython/unicodeobject.h) ---
    ("PyASCIIObject.size", ["size(PyASCIIObject)"]),
    ("PyASCIIObject.length", ["off(PyASCIIObject, length)"]),
    ("PyASCIIObject.state", ["off(PyASCIIObject, state)"]),
    ("PyCompactUnicodeObject.size", ["size(PyCompactUnicodeObject)"]),
    ("PyUnicodeObject.data", ["off(PyUnicodeObject, data)"]),
    # --- int, float, bytes, tuple, list, set ---
    ("PyLongObject.ob_digit", ["off(PyLongObject, long_value.ob_digit)", "off(PyLongObject, ob_digit)"]),
    ("PyLongObject.lv_tag", ["off(PyLongObject, long_value.lv_tag)"]),
    ("PyFloatObject.ob_fval", ["off(PyFloatObject, ob_fval)"]),
    ("PyBytesObject.ob_sval", ["off(PyBytesObject, ob_sval)"]),
    ("PyTupleObject.ob_item", ["off(PyTupleObject, ob_item)"]),
    ("PyListObject.ob_item", ["off(PyListObject, ob_item)"]),
    ("PyListObject.allocated", ["off(PyListObject, allocated)"]),
    ("PySetObject.fill", ["off(PySetObject, fill)"]),
    ("PySetObject.used", ["off(PySetObject, used)"]),
    ("PySetObject.mask", ["off(PySetObject, mask)"]),
    ("PySetObject.table", ["off(PySetObject, table)"]),
    ("setentry.size", ["size(setentry)"]),
    ("setentry.key", ["off(setentry, key)"]),
    # --- dict (Include/internal/pycore_dict.h, Objects/dict-common.h) ---
    ("PyDictObject.ma_used", ["off(PyDictObject, ma_used)"]),
    ("PyDictObject.ma_keys", ["off(PyDictObject, ma_keys)"]),
    ("PyDictObject.ma_values", ["off(PyDictObject, ma_values)"]),
    ("PyDictKeysObject.dk_size", ["off(PyDictKeysObject, dk_size)"]),
    ("PyDictKeysObject.dk_log2_size", ["off(PyDictKeysObject, dk_log2_size)"]),
    ("PyDictKeysObject.dk_log2_index_bytes", ["off(PyDictKeysObject, dk_log2_index_bytes)"]),
    ("PyDictKeysObject.dk_kind", ["off(PyDictKeysObject, dk_kind)"]),
    ("PyDictKeysObject.dk_nentries", ["off(PyDictKeysObject, dk_nentries)"]),
    ("PyDictKeysObject.dk_indices", ["off(PyDictKeysObject, dk_indices)"]),
    ("PyDictKeyEntry.size", ["size(PyDictKeyEntry)"]),
    ("PyDictUnicodeEntry.size", ["size(PyDictUnicodeEntry)"]),
    ("PyDictValues.values", ["off(PyDictValues, values)"]),
    # --- functions, code, modules ---
    ("PyFunctionObject.func_code", ["off(PyFunctionObject, func_code)"]),
    ("PyFunctionObject.func_name", ["off(PyFunctionObject, func_name)"]),
    ("PyFunctionObject.func_qualname", ["off(PyFunctionObject, func_qualname)"]),
    ("PyFunctionObject.func_module", ["off(PyFunctionObject, func_module)"]),
    ("PyCodeObject.co_flags", ["off(PyCodeObject, co_flags)"]),
    ("PyCodeObject.co_firstlineno", ["off(PyCodeObject, co_firstlineno)"]),
    ("PyCodeObject.co_filename", ["off(PyCodeObject, co_filename)"]),
    ("PyCodeObject.co_name", ["off(PyCodeObject, co_name)"]),
    ("PyCodeObject.co_qualname", ["off(PyCodeObject, co_qualname)"]),
    ("PyCodeObject.co_lnotab", ["off(PyCodeObject, co_lnotab)"]),
    ("PyCodeObject.co_linetable", ["off(PyCodeObject, co_linetable)"]),
    ("PyCodeObject.co_code", ["off(PyCodeObject, co_code)"]),
    ("PyCodeObject.co_code_adaptive", ["off(PyCodeObject, co_code_adaptive)"]),
    ("PyCodeObject._co_firsttraceable", ["off(PyCodeObject, _co_firsttraceable)"]),
    ("PyModuleObject.md_dict", ["off(PyModuleObject, md_dict)"]),
    # --- runtime, interpreters, threads (Include/internal/pycore_runtime.h, pycore_interp.h) ---
    ("_PyRuntimeState.interpreters_head", ["off(_PyRuntimeState, interpreters.head)"]),
    ("_PyRuntimeState.gc", ["off(_PyRuntimeState, gc)"]),
    ("_PyRuntimeState.tstate_current", ["off(_PyRuntimeState, gilstate.tstate_current)"]),
    ("PyInterpreterState.next", ["off(PyInterpreterState, next)"]),
    ("PyInterpreterState.id", ["off(PyInterpreterState, id)"]),
    ("PyInterpreterState.threads_head", ["off(PyInterpreterState, threads.head)", "off(PyInterpreterState, tstate_head)"]),
    ("PyInterpreterState.sysdict", ["off(PyInterpreterState, sysdict)"]),
    ("PyInterpreterState.modules", ["off(PyInterpreterState, imports.modules)", "off(PyInterpreterState, modules)"]),
    ("PyInterpreterState.gc", ["off(PyInterpreterState, gc)"]),
    ("PyInterpreterState.ceval_gil", ["off(PyInterpreterState, ceval.gil)"]),
    ("_gil_runtime_state.last_holder", ["off(struct _gil_runtime_state, last_holder)"]),
    ("_gil_runtime_state.locked", ["off(struct _gil_runtime_state, locked)"]),
    ("PyThreadState.next", ["off(PyThreadState, next)"]),
    ("PyThreadState.interp", ["off(PyThreadState, interp)"]),
    ("PyThreadState.frame", ["off(PyThreadState, frame)"]),
    ("PyThreadState.cframe", ["off(PyThreadState, cframe)"]),
    ("PyThreadState.current_frame", ["off(PyThreadState, current_frame)"]),
    ("PyThreadState.thread_id", ["off(PyThreadState, thread_id)"]),
    ("PyThreadState.native_thread_id", ["off(PyThreadState, native_thread_id)"]),
    # --- GC state (Include/internal/pycore_gc.h) ---
    ("_gc_runtime_state.generations", ["off(struct _gc_runtime_state, generations)"]),
    ("_gc_runtime_state.permanent_generation", ["off(struct _gc_runtime_state, permanent_generation)"]),
    ("_gc_runtime_state.collecting", ["off(struct _gc_runtime_state, collecting)"]),
    ("gc_generation.size", ["size(struct gc_generation)"]),
    ("gc_generation.head", ["off(struct gc_generation, head)"]),
    # --- frames (Include/cpython/frameobject.h; Include/internal/pycore_frame.h) ---
    ("PyFrameObject.f_back", ["off(PyFrameObject, f_back)"]),
    ("PyFrameObject.f_code", ["off(PyFrameObject, f_code)"]),
    ("PyFrameObject.f_lasti", ["off(PyFrameObject, f_lasti)"]),
    ("PyFrameObject.f_frame", ["off(PyFrameObject, f_frame)"]),
    ("_PyCFrame.current_frame", ["off(_PyCFrame, current_frame)"]),
    ("_PyCFrame.previous", ["off(_PyCFrame, previous)"]),
    ("_PyInterpreterFrame.size", ["size(_PyInterpreterFrame)"]),
    ("_PyInterpreterFrame.code", ["off(_PyInterpreterFrame, f_executable)", "off(_PyInterpreterFrame, f_code)"]),
    ("_PyInterpreterFrame.previous", ["off(_PyInterpreterFrame, previous)"]),
    ("_PyInterpreterFrame.instr", ["off(_PyInterpreterFrame, instr_ptr)", "off(_PyInterpreterFrame, prev_instr)"]),
    ("_PyInterpreterFrame.is_entry", ["off(_PyInterpreterFrame, is_entry)"]),
    ("_PyInterpreterFrame.owner", ["off(_PyInterpreterFrame, owner)"]),
    ("_PyInterpreterFrame.stackpointer", ["off(_PyInterpreterFrame, stackpointer)"]),
    # 3.11/3.12: the value stack's top as an index into localsplus (pycore_frame.h int stacktop)
    ("_PyInterpreterFrame.stacktop", ["off(_PyInterpreterFrame, stacktop)"]),
    # <= 3.10 value stack (Include/cpython/frameobject.h): f_valuestack; 3.10 f_stackdepth;
    # 3.8/3.9 f_stacktop (NULL while the frame runs: ceval keeps the top in a C local)
    ("PyFrameObject.f_valuestack", ["off(PyFrameObject, f_valuestack)"]),
    ("PyFrameObject.f_stackdepth", ["off(PyFrameObject, f_stackdepth)"]),
    ("PyFrameObject.f_stacktop", ["off(PyFrameObject, f_stacktop)"]),
    ("PyCodeObject.co_stacksize", ["off(PyCodeObject, co_stacksize)"]),
    ("PyCodeObject.co_names", ["off(PyCodeObject, co_names)"]),
    ("_PyInterpreterFrame.localsplus", ["off(_PyInterpreterFrame, localsplus)"]),
    # Owner of the eval loop's on-C-stack entry frame (pycore_frame.h / pycore_interpframe_structs.h
    # enum _frameowner): FRAME_OWNED_BY_INTERPRETER (3) in 3.14+, FRAME_OWNED_BY_CSTACK (3) in 3.12/3.13.
    ("frame_owner.entry", ["(long)FRAME_OWNED_BY_INTERPRETER", "(long)FRAME_OWNED_BY_CSTACK"]),
    # The owners that are Python frames run by the eval loop: THREAD, GENERATOR, FRAME_OBJECT.
    ("frame_owner.frame_object", ["(long)FRAME_OWNED_BY_FRAME_OBJECT"]),
    ("PyGenObject.gi_frame", ["off(PyGenObject, gi_frame)"]),
    ("PyGenObject.gi_iframe", ["off(PyGenObject, gi_iframe)"]),
    # --- names in frames, attributes, descriptors (for --py expressions) ---
    ("PyFrameObject.f_globals", ["off(PyFrameObject, f_globals)"]),
    ("PyFrameObject.f_builtins", ["off(PyFrameObject, f_builtins)"]),
    ("PyFrameObject.f_locals", ["off(PyFrameObject, f_locals)"]),
    ("PyFrameObject.f_localsplus", ["off(PyFrameObject, f_localsplus)"]),
    ("_PyInterpreterFrame.f_globals", ["off(_PyInterpreterFrame, f_globals)"]),
    ("_PyInterpreterFrame.f_builtins", ["off(_PyInterpreterFrame, f_builtins)"]),
    ("_PyInterpreterFrame.f_locals", ["off(_PyInterpreterFrame, f_locals)"]),
    ("_PyInterpreterFrame.localsplus", ["off(_PyInterpreterFrame, localsplus)"]),
    ("PyCodeObject.co_nlocals", ["off(PyCodeObject, co_nlocals)"]),
    ("PyCodeObject.co_varnames", ["off(PyCodeObject, co_varnames)"]),
    ("PyCodeObject.co_cellvars", ["off(PyCodeObject, co_cellvars)"]),
    ("PyCodeObject.co_freevars", ["off(PyCodeObject, co_freevars)"]),
    ("PyCodeObject.co_nlocalsplus", ["off(PyCodeObject, co_nlocalsplus)"]),
    ("PyCodeObject.co_localsplusnames", ["off(PyCodeObject, co_localsplusnames)"]),
    ("PyCodeObject.co_localspluskinds", ["off(PyCodeObject, co_localspluskinds)"]),
    ("PyCellObject.ob_ref", ["off(PyCellObject, ob_ref)"]),
    ("PyTypeObject.tp_dictoffset", ["off(PyTypeObject, tp_dictoffset)"]),
    ("PyTypeObject.tp_descr_get", ["off(PyTypeObject, tp_descr_get)"]),
    ("PyTypeObject.tp_descr_set", ["off(PyTypeObject, tp_descr_set)"]),
    ("PyHeapTypeObject.ht_cached_keys", ["off(PyHeapTypeObject, ht_cached_keys)"]),
    ("PyDescrObject.d_name", ["off(PyDescrObject, d_name)"]),
    ("PyMemberDescrObject.d_member", ["off(PyMemberDescrObject, d_member)"]),
    ("PyMemberDef.type", ["off(PyMemberDef, type)"]),
    ("PyMemberDef.offset", ["off(PyMemberDef, offset)"]),
    ("PyMemberDef.flags", ["off(PyMemberDef, flags)"]),
    ("PyDictValues.capacity", ["off(PyDictValues, capacity)"]),
    ("PyDictValues.valid", ["off(PyDictValues, valid)"]),
    # --- allocators (Include/internal/pycore_pymem.h, pycore_obmalloc.h; 3.12+ in the runtime) ---
    ("_PyRuntimeState.size", ["size(_PyRuntimeState)"]),
    ("_PyRuntimeState.allocators_standard_obj", ["off(_PyRuntimeState, allocators.standard.obj)"]),
    ("_PyRuntimeState.allocators_debug_obj", ["off(_PyRuntimeState, allocators.debug.obj)"]),
    ("_PyRuntimeState.allocators_obj_arena", ["off(_PyRuntimeState, allocators.obj_arena)"]),
    ("PyInterpreterState.obmalloc", ["off(PyInterpreterState, obmalloc)"]),
    # 8 when interp->obmalloc is a pointer (3.13), the embedded struct's size otherwise (3.12)
    ("PyInterpreterState.obmalloc_size", ["size(((PyInterpreterState *)0)->obmalloc)"]),
    ("PyInterpreterState.feature_flags", ["off(PyInterpreterState, feature_flags)"]),
    ("_obmalloc_state.pools_used", ["off(struct _obmalloc_state, pools.used)"]),
    ("_obmalloc_state.arenas", ["off(struct _obmalloc_state, mgmt.arenas)"]),
    ("_obmalloc_state.maxarenas", ["off(struct _obmalloc_state, mgmt.maxarenas)"]),
    ("_obmalloc_state.usable_arenas", ["off(struct _obmalloc_state, mgmt.usable_arenas)"]),
    ("_obmalloc_state.narenas_currently_allocated", ["off(struct _obmalloc_state, mgmt.narenas_currently_allocated)"]),
    ("_obmalloc_state.arena_map_root", ["off(struct _obmalloc_state, usage.arena_map_root)"]),
    ("pool_header.size", ["size(struct pool_header)"]),
    ("arena_object.size", ["size(struct arena_object)"]),
    ("arena_object.pool_address", ["off(struct arena_object, pool_address)"]),
    ("arena_object.nfreepools", ["off(struct arena_object, nfreepools)"]),
    ("arena_object.ntotalpools", ["off(struct arena_object, ntotalpools)"]),
    # --- tracemalloc (Modules/_tracemalloc.c <= 3.11; Include/internal/pycore_tracemalloc.h 3.12+) ---
    ("_PyRuntimeState.tracemalloc", ["off(_PyRuntimeState, tracemalloc)"]),
    ("_tracemalloc_runtime_state.tracing", ["off(struct _tracemalloc_runtime_state, config.tracing)"]),
    ("_tracemalloc_runtime_state.max_nframe", ["off(struct _tracemalloc_runtime_state, config.max_nframe)"]),
    ("_tracemalloc_runtime_state.traces", ["off(struct _tracemalloc_runtime_state, traces)"]),
    ("_tracemalloc_runtime_state.tracebacks", ["off(struct _tracemalloc_runtime_state, tracebacks)"]),
    ("_tracemalloc_runtime_state.domains", ["off(struct _tracemalloc_runtime_state, domains)"]),
    ("_tracemalloc_runtime_state.allocators_obj", ["off(struct _tracemalloc_runtime_state, allocators.obj)"]),
    ("_PyTraceMalloc_Config.tracing", ["off(struct _PyTraceMalloc_Config, tracing)"]),
    ("_PyTraceMalloc_Config.max_nframe", ["off(struct _PyTraceMalloc_Config, max_nframe)"]),
    ("_Py_hashtable_t.nentries", ["off(_Py_hashtable_t, nentries)"]),
    ("_Py_hashtable_t.nbuckets", ["off(_Py_hashtable_t, nbuckets)", "off(_Py_hashtable_t, num_buckets)"]),
    ("_Py_hashtable_t.buckets", ["off(_Py_hashtable_t, buckets)"]),
    ("_Py_hashtable_t.key_size", ["off(_Py_hashtable_t, key_size)"]),
    ("_Py_hashtable_t.data_size", ["off(_Py_hashtable_t, data_size)"]),
    ("_Py_hashtable_entry_t.size", ["size(_Py_hashtable_entry_t)"]),
    ("_Py_hashtable_entry_t.key_hash", ["off(_Py_hashtable_entry_t, key_hash)"]),
    ("_Py_hashtable_entry_t.key", ["off(_Py_hashtable_entry_t, key)"]),
    ("_Py_hashtable_entry_t.value", ["off(_Py_hashtable_entry_t, value)"]),
    ("traceback_t.nframe", ["off(struct tracemalloc_traceback, nframe)", "off(traceback_t, nframe)"]),
    ("traceback_t.nframe_size", ["size(((struct tracemalloc_traceback *)0)->nframe)", "size(((traceback_t *)0)->nframe)"]),
    ("traceback_t.total_nframe", ["off(struct tracemalloc_traceback, total_nframe)", "off(traceback_t, total_nframe)"]),
    ("traceback_t.frames", ["off(struct tracemalloc_traceback, frames)", "off(traceback_t, frames)"]),
    ("frame_t.size", ["size(struct tracemalloc_frame)", "size(frame_t)"]),
    ("frame_t.lineno", ["off(struct tracemalloc_frame, lineno)", "off(frame_t, lineno)"]),
    # sizeof(*filename): 1 when it is a UTF-8 `const char *` (3.15 tracemalloc.c), else a PyObject.
    ("frame_t.filename_target_size", ["size(*((struct tracemalloc_frame *)0)->filename)",
                                      "size(*((frame_t *)0)->filename)"]),
    ("trace_t.traceback", ["off(struct tracemalloc_trace, traceback)", "off(trace_t, traceback)"]),
]


def _compute_in_gdb() -> None:
    import gdb

    def evaluate(expr: str) -> int:
        if expr.startswith("size(") and expr.endswith(")"):
            c_expr = f"sizeof({expr[5:-1]})"
        elif expr.startswith("off(") and expr.endswith(")"):
            type_name, _, path = expr[4:-1].partition(",")
            c_expr = f"(long)&(({type_name.strip()}*)0)->{path.strip()}"
        else:
            c_expr = expr
        return int(gdb.parse_and_eval(c_expr))

    result: dict[str, int] = {}
    for name, candidates in FIELDS:
        for candidate in candidates:
            try:
                result[name] = evaluate(candidate)
                break
            except gdb.error:
                continue

    # Every uint64 entry of _Py_DebugOffsets (3.13+, pycore_debug_offsets.h) as
    # "group.field" -> offset in the struct: the order the target's own copy is read in.
    entries: dict[str, int] = {}

    def walk(struct_type: gdb.Type, prefix: str, base: int) -> None:
        for member in struct_type.fields():
            member_type = member.type.strip_typedefs()
            offset = base + member.bitpos // 8
            if member_type.code == gdb.TYPE_CODE_STRUCT:
                walk(member_type, f"{prefix}{member.name}.", offset)
            elif member_type.code == gdb.TYPE_CODE_INT and member_type.sizeof == 8:
                entries[f"{prefix}{member.name}"] = offset

    try:
        walk(gdb.lookup_type("struct _Py_DebugOffsets").strip_typedefs(), "", 0)
    except gdb.error:
        pass
    with open(os.environ["PYLIFE_GEN_OUT"], "w") as out:
        json.dump({"fields": result, "debug_offsets": entries}, out)


ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "pylife" / "cpython" / "layouts_generated.py"
VERSIONS = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14", "3.15"]
SID_VERSIONS = ["3.14", "3.15"]  # from the Debian sid root (scripts/make_sid_root.sh)
SID_ROOT = Path(os.environ.get("PYLIFE_SID_ROOT", "/var/cache/pylife/sid-root"))


@dataclass(frozen=True)
class Image:
    """An interpreter image with DWARF, and the gdb that reads it (the sid root's own, by chroot)."""

    path: Path  # as the gdb below sees it
    chroot: Path | None = None

    def __str__(self) -> str:
        return f"{self.path} (sid root)" if self.chroot else str(self.path)


def installed_interpreters() -> dict[str, Image]:
    """Map "3.X" -> libpython of the newest installed pyenv 3.X.Y, or the sid root's python3.X."""
    try:
        root = Path(subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        root = Path.home() / ".pyenv"
    found: dict[str, Image] = {}
    for minor in VERSIONS:
        candidates = sorted((root / "versions").glob(f"{minor}.*"), key=lambda p: [int(x) for x in p.name.split(".") if x.isdigit()])
        for version_dir in reversed(candidates):
            lib = version_dir / "lib" / f"libpython{minor}.so.1.0"
            if lib.exists():
                found[minor] = Image(lib)
                break
        if minor not in found and minor in SID_VERSIONS and (SID_ROOT / f"usr/bin/python{minor}").exists():
            # Debian links libpython into the executable; python3.X-dbg carries its DWARF.
            found[minor] = Image(Path(f"/usr/bin/python{minor}"), SID_ROOT)
    return found


def installed_debug_interpreters() -> dict[str, Image]:
    """Map "3.X" -> a Py_DEBUG build's image: libpython3.Xd.so when shared, else /usr/bin/python3.Xd."""
    found: dict[str, Image] = {}
    for minor in VERSIONS:
        for image in (Path(f"/usr/lib/x86_64-linux-gnu/libpython{minor}d.so.1.0"), Path(f"/usr/bin/python{minor}d")):
            if image.exists():
                found[minor] = Image(image)
                break
        if minor not in found and minor in SID_VERSIONS and (SID_ROOT / f"usr/bin/python{minor}d").exists():
            found[minor] = Image(Path(f"/usr/bin/python{minor}d"), SID_ROOT)
    return found


def dwarf_offsets(image: Image) -> tuple[dict[str, int], dict[str, int]]:
    """(our fields, _Py_DebugOffsets entries) read by gdb from the image's DWARF."""
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) if image.chroot is None else image.chroot / "tmp"
    inside = Path("/tmp") if image.chroot is not None else tmp
    tag = f"{os.getpid()}-{image.path.parent.parent.name}-{image.path.name}"
    out, script = f"pylife-gen-{tag}.json", f"pylife-gen-{tag}.py"
    # gdb reads this very file as its script; a copy in the root's /tmp is visible inside a chroot.
    shutil.copyfile(Path(__file__).resolve(), tmp / script)
    env = dict(os.environ, PYLIFE_GEN_OUT=str(inside / out))
    gdb = ["chroot", str(image.chroot), "gdb"] if image.chroot is not None else ["gdb"]
    try:
        subprocess.run([*gdb, "-batch", "-nx", "-x", str(inside / script), str(image.path)],
                       env=env, check=True, capture_output=True)
        data = json.loads((tmp / out).read_text())
    finally:
        (tmp / out).unlink(missing_ok=True)
        (tmp / script).unlink(missing_ok=True)
    offsets, entries = dict(data["fields"]), dict(data["debug_offsets"])
    if "PyObject.size" not in offsets:
        raise SystemExit(f"{image}: gdb found no CPython DWARF (no debug info installed?)")
    return offsets, entries


def _key(minor: str) -> tuple[int, ...]:
    return tuple(int(x) for x in minor.split("."))


def _table_lines(name: str, tables: dict[str, dict[str, int]], order: list[str] | None = None) -> list[str]:
    lines = [f"{name}: dict[tuple[int, int], dict[str, int]] = {{"]
    for minor in VERSIONS:
        if not tables.get(minor):
            continue
        lines.append(f"    {_key(minor)!r}: {{")
        names = order if order is not None else list(tables[minor])
        for field_name in names:
            if field_name in tables[minor]:
                lines.append(f"        {field_name!r}: {tables[minor][field_name]},")
        lines.append("    },")
    lines.append("}")
    return lines


def main(argv: list[str]) -> int:
    libs = installed_interpreters()
    debug_libs = installed_debug_interpreters()
    if "--print" in argv:
        wanted = argv[argv.index("--print") + 1]
        minor = ".".join(wanted.rstrip("d").split(".")[:2])
        pprint.pprint(dwarf_offsets((debug_libs if wanted.endswith("d") else libs)[minor]))
        return 0
    release = {minor: dwarf_offsets(lib) for minor, lib in libs.items()}
    debug = {minor: dwarf_offsets(lib) for minor, lib in debug_libs.items()}
    tables = {minor: found[0] for minor, found in release.items()}
    debug_tables = {minor: found[0] for minor, found in debug.items()}
    debug_offsets = {minor: found[1] for minor, found in release.items() if found[1]}
    for minor, (_, entries) in debug.items():  # one struct per minor: a debug build must agree
        if entries and debug_offsets.get(minor, entries) != entries:
            raise SystemExit(f"{minor}: _Py_DebugOffsets of the debug build differs from the release build's")
    if "--check" in argv:
        sys.path.insert(0, str(ROOT))
        from pylife.cpython.layouts_generated import DEBUG_OFFSETS, DEBUG_TABLES, TABLES

        bad = 0
        for label, generated, found, images in (("", TABLES, tables, libs), ("d", DEBUG_TABLES, debug_tables, debug_libs),
                                                (" _Py_DebugOffsets", DEBUG_OFFSETS, debug_offsets, libs)):
            for minor, offsets in found.items():
                if generated.get(_key(minor)) != offsets:
                    bad += 1
                    print(f"{minor}{label}: table differs from DWARF of {images[minor]}")
        checked = sorted(tables, key=_key) + [f"{minor}d" for minor in sorted(debug_tables, key=_key)]
        print(f"checked {checked}: {'OK' if not bad else f'{bad} mismatches'}")
        return 1 if bad else 0

    def sources(images: dict[str, Image]) -> list[str]:
        return [f"    {minor}: {lib}" for minor, lib in sorted(images.items(), key=lambda kv: _key(kv[0]))]

    order = [name for name, _ in FIELDS]
    lines = [
        '"""Offsets of CPython structures, generated by scripts/gen_layouts.py. Do not edit.',
        "",
        "Source of TABLES: DWARF of the installed release (GIL, non-debug) builds:",
        *sources(libs),
        "Source of DEBUG_TABLES: DWARF of the installed Py_DEBUG (GIL) builds:",
        *(sources(debug_libs) or ["    (none installed)"]),
        "DEBUG_OFFSETS: where each entry of _Py_DebugOffsets sits in that struct (3.13+), from the same DWARF.",
        '"""',
        "",
        *_table_lines("TABLES", tables, order),
        "",
        *_table_lines("DEBUG_TABLES", debug_tables, order),
        "",
        *_table_lines("DEBUG_OFFSETS", debug_offsets),
    ]
    TABLE.write_text("\n".join(lines) + "\n")
    print(f"wrote {TABLE.relative_to(ROOT)} for {sorted(tables, key=_key)} and debug builds {sorted(debug_tables, key=_key)}")
    return 0


if __name__ == "__main__":
    try:
        import gdb

        _compute_in_gdb()
    except ImportError:
        sys.exit(main(sys.argv[1:]))
