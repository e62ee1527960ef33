"""`pylife triage` grouping (pylife.batch.cores): signatures and groups, the executable named by a core."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from pylife.batch import cores


def native(function: str, module: str) -> dict[str, Any]:
    return {"kind": "native", "function": function, "module": module, "file": None, "line": None}


def document(core: str, kind: str, frames: list[dict[str, Any]], victim_type: str | None) -> dict[str, Any]:
    objects = [{"address": 0x1000, "verdict": "FREED", "type": victim_type, "reasons": [], "source": "rdi"}]
    return {"core": core, "failures": [], "crash": {"kind": kind, "stack": frames, "objects": objects,
                                                     "victim": None, "summary": kind}}


LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
LIBPY = "/usr/lib/libpython3.12.so.1.0"
EXT = "/build/buggy.cpython-312-x86_64-linux-gnu.so"
UAF = [native("PyObject_Repr", LIBPY), native("buggy_over_decref_crash", EXT), native("cfunction_call", LIBPY),
       native("main", "/usr/bin/python3")]
ABORT = [native("raise", LIBC), native("abort", LIBC), native("Py_FatalError", LIBPY), native("buggy_leak", EXT)]


def test_signature_skips_libc_libpython_and_the_interpreter() -> None:
    assert cores.signature(document("a", "use-after-free", UAF, "Victim")) == {
        "kind": "use-after-free", "frames": ["buggy_over_decref_crash"], "victim_type": "Victim"}
    assert cores.signature(document("b", "fatal-error", ABORT, None))["frames"] == ["buggy_leak"]


def test_groups_count_and_keep_an_example() -> None:
    documents = [document("c1", "use-after-free", UAF, "Victim"), document("c2", "fatal-error", ABORT, None),
                 document("c3", "use-after-free", UAF, "Victim"), document("c4", "use-after-free", UAF, "Other")]
    result = cores.triage(documents)
    assert result["cores"] == 4
    assert [(g["count"], g["kind"], g["victim_type"], g["example"]) for g in result["groups"]] == [
        (2, "use-after-free", "Victim", "c1"), (1, "fatal-error", None, "c2"), (1, "use-after-free", "Other", "c4")]
    assert result["groups"][0]["cores"] == ["c1", "c3"]


def test_an_unreadable_core_is_its_own_group() -> None:
    result = cores.triage([{"core": "x", "failures": ["no result"], "crash": None}])
    assert result["groups"][0]["kind"] == "unreadable" and result["failures"] == ["no result"]


def _core_with_file_note(path: Path, files: list[str]) -> None:
    """A minimal ELF core: one PT_NOTE holding an NT_FILE note."""
    names = b"".join(f.encode() + b"\0" for f in files)
    desc = struct.pack("<QQ", len(files), 4096) + b"".join(struct.pack("<QQQ", 0x1000 * i, 0x2000 * i, 0) for i in
                                                          range(len(files))) + names
    desc += b"\0" * (-len(desc) % 4)
    note = struct.pack("<III", 5, len(desc), cores.NT_FILE) + b"CORE\0\0\0\0" + desc
    header = bytearray(64)
    header[:4] = b"\x7fELF"
    header[4] = 2
    header[5] = 1
    struct.pack_into("<HH", header, 16, cores.ET_CORE, 62)
    struct.pack_into("<Q", header, 32, 64)  # e_phoff
    struct.pack_into("<HH", header, 54, 56, 1)  # e_phentsize, e_phnum
    phdr = struct.pack("<IIQQQQQQ", cores.PT_NOTE, 0, 64 + 56, 0, 0, len(note), len(note), 4)
    path.write_bytes(bytes(header) + phdr + note)


def test_the_core_names_its_executable(tmp_path: Path) -> None:
    core = tmp_path / "core.1"
    _core_with_file_note(core, ["/usr/bin/python3.12", "/lib/libc.so.6"])
    assert cores.is_core(core)
    assert cores.executable_of(str(core)) == "/usr/bin/python3.12"
    assert cores.find_cores([str(tmp_path)]) == [core]
    (tmp_path / "not-a-core").write_bytes(b"\x7fELF" + b"\0" * 60)
    assert cores.find_cores([str(tmp_path)]) == [core]
    assert cores.executable_of(str(tmp_path / "not-a-core")) is None


def test_the_triage_page_escapes_and_links_nothing_external() -> None:
    from pylife.render import html

    hostile = "Victim\u202e<script>"
    result = cores.triage([document("/c/core.1", "use-after-free", UAF, hostile),
                           document("/c/core.2", "use-after-free", UAF, hostile)])
    page = html.triage_page(result)
    assert "<script>" not in page and "\u202e" not in page and "Victim\\u202e&lt;script&gt;" in page
    assert "<h1>pylife triage: 2 cores, 1 groups</h1>" in page and "/c/core.1\n/c/core.2" in page
