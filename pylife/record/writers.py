"""Who writes an object's refcount: the function names that say what a write was.

Kept apart from the recorder so that the balance analysis and the follow
rules (who may write a reused block) share them without an import cycle.
"""

from __future__ import annotations

# Inline refcount helpers (Include/object.h, refcount.h): the writer is their caller.
REFCOUNT_HELPERS = frozenset({
    "Py_INCREF", "Py_DECREF", "_Py_INCREF", "_Py_DECREF", "Py_XINCREF", "Py_XDECREF", "_Py_XINCREF", "_Py_XDECREF",
    "Py_NewRef", "Py_XNewRef", "_Py_NewRef", "_Py_XNewRef", "Py_SET_REFCNT", "_Py_SET_REFCNT", "Py_CLEAR",
    "_Py_IncRef", "_Py_DecRef", "Py_IncRef", "Py_DecRef", "_Py_INCREF_STAT_INC", "_Py_DECREF_SPECIALIZED",
    "_Py_DECREF_NO_DEALLOC", "Py_DECREF_MORTAL",
})
# Writers that set up a fresh object in a reused block (Objects/object.c).
NEW_OBJECT_WRITERS = frozenset({
    "_Py_NewReference", "_Py_NewReferenceNoTotal", "new_reference", "_PyObject_Init", "PyObject_Init",
    "_PyObject_InitVar", "PyObject_InitVar", "PyObject_INIT", "PyObject_INIT_VAR",
})
# Allocator functions that write free-list links or fill bytes into freed blocks (Objects/obmalloc.c, glibc).
ALLOCATOR_WRITERS = frozenset({
    "pymalloc_free", "_PyObject_Free", "PyObject_Free", "_PyMem_DebugRawFree", "_PyMem_DebugFree", "insert_to_freepool",
    "insert_to_usedpool", "free", "__libc_free", "_int_free", "tcache_put", "cfree", "memset", "__memset_avx2_unaligned_erms",
    "__memset_evex_unaligned_erms", "__memset_avx512_unaligned_erms", "_PyObject_MiFree", "mi_free", "_mi_free_generic",
    "pymalloc_alloc", "_PyObject_Malloc", "pymalloc_pool_extend", "allocate_from_new_pool",
})
