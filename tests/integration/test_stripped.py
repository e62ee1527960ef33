"""Interpreters without DWARF and without .symtab, in real gdb and lldb-16 (issue 11, F1-F6).

The builds:
- strip-all and strip-debug copies of pyenv's 3.10 and 3.12: the executable
  and libpython copied into this run's temporary directory and stripped
  there, run with LD_LIBRARY_PATH on the copy (before the RUNPATH to the
  original) and PYTHONHOME on the original standard library;
- Debian's /usr/bin/python3.11 (LTO, statics renamed ``name.lto_priv.N``)
  with its debug files hidden from the debugger.
glibc's debug symbols (libc6-dbg) are hidden too: nobody names ``tcache_put``.

On each: the objects fixture (version, info, bt), the over-decref of a
non-GC object then used after free (F1: must stop), and a correct free of a
600-byte object (F2: must not stop). The same expectations for both debuggers.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .driver import Session, run_session
from .environment import DEBUGGERS, FIXTURE, REPO_ROOT, debugger_skip_reason, interpreters
from .once import once, shared_root

BUGGY = REPO_ROOT / "tests" / "fixtures" / "buggy"
sys.path.insert(0, str(BUGGY))
from build import build  # noqa: E402

DEBIAN_PYTHON = Path("/usr/bin/python3.11")
BUILDS = ("3.10-strip-all", "3.12-strip-all", "3.10-strip-debug", "3.12-strip-debug", "debian-3.11")
SCENARIO_BUILDS = ("3.10-strip-all", "3.12-strip-all", "debian-3.11")
NOWHERE = "/nonexistent-pylife-debug-dir"
OBJECTS = ("str_ascii", "int_big_pos", "float", "tuple", "list", "dict", "instance", "bytes")
UNNAMED = re.compile(r"^[\w.+-]+\+0x[0-9a-f]+$")


class Build:
    def __init__(self, name: str, python: Path, env: dict[str, str], original: Path) -> None:
        self.name = name
        self.python = python  # what runs
        self.env = env  # for the inferior only (PYTHONHOME would break the debugger's own Python)
        self.original = original  # the interpreter its headers and buggy build come from


def _make_build(root: Path, name: str) -> Build:
    if name == "debian-3.11":
        if not DEBIAN_PYTHON.is_file():
            pytest.skip(f"{DEBIAN_PYTHON} is not installed")
        return Build(name, DEBIAN_PYTHON, {}, DEBIAN_PYTHON)
    minor, flavour = name.split("-", 1)
    interpreter = interpreters()[minor]
    if interpreter is None:
        pytest.skip(f"CPython {minor} is not installed under pyenv")
    if shutil.which("strip") is None:
        pytest.skip("strip (binutils) not found")
    prefix = interpreter.path.parent.parent
    library = prefix / "lib" / f"libpython{minor}.so.1.0"
    if not library.is_file():
        pytest.skip(f"{library} not found (a static build)")
    directory = root / name
    python = directory / "bin" / interpreter.path.name
    if not python.exists():
        (directory / "bin").mkdir(parents=True, exist_ok=True)
        (directory / "lib").mkdir(exist_ok=True)
        shutil.copy2(interpreter.path, python)
        shutil.copy2(library, directory / "lib" / library.name)
        subprocess.run(["strip", f"--{flavour}", str(python), str(directory / "lib" / library.name)], check=True)
    return Build(name, python, {"LD_LIBRARY_PATH": str(directory / "lib"), "PYTHONHOME": str(prefix)},
                 interpreter.path)


def _setup(debugger: str, build: Build, args: list[str], launch: bool = True) -> list[str]:
    """Hide every debug file, load the program, give it its environment, run it to its stop
    (``launch=False``: the driver launches it; lldb-16 -b runs no -o command after a crash)."""
    quoted = " ".join(args)
    if debugger == "gdb":
        return ([f"set debug-file-directory {NOWHERE}", f"file {build.python}", f"set args {quoted}"]
                + [f"set environment {k} {v}" for k, v in build.env.items()] + (["run"] if launch else []))
    setup = [f"settings set target.debug-file-search-paths {NOWHERE}", "settings set symbols.enable-external-lookup false",
             f"target create {build.python}", f"settings set -- target.run-args {quoted}"]
    if build.env:
        setup.append("settings set target.env-vars " + " ".join(f"{k}={v}" for k, v in build.env.items()))
    return [*setup, "process launch"] if launch else setup


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_root(tmp_path_factory, "pylife-stripped")


def _objects_session(root: Path, debugger: str, build_name: str) -> Session:
    def make(workdir: Path) -> Session:
        reason = debugger_skip_reason(debugger)
        if reason:
            pytest.skip(reason)
        build = _make_build(root / "builds", build_name)
        truth = workdir / "truth.json"
        commands = [("version", "pylife version --json"), ("version_text", "pylife version"),
                    ("bt", "pylife bt --json"), ("pymalloc", "pylife pymalloc --json")]
        commands += [(f"info:{name}", f"pylife info {{{name}}} --json") for name in OBJECTS]
        return run_session(debugger, "live", workdir, _setup(debugger, build, [str(FIXTURE), str(truth)]),
                           commands, truth=truth)
    return once(root, f"objects-{debugger}-{build_name}", make)


def _scenario_session(root: Path, debugger: str, build_name: str, scenario: str) -> Session:
    def make(workdir: Path) -> Session:
        reason = debugger_skip_reason(debugger)
        if reason:
            pytest.skip(reason)
        target = _make_build(root / "builds", build_name)
        ext = build(target.original, root / "buggy")
        out = workdir / "scenario.jsonl"
        target.env = {**target.env, "PYTHONPATH": str(ext), "PYLIFE_SCENARIO_OUT": str(out)}
        commands = [("watch", "pylife watch {victim} --json"), ("continue", "continue"),
                    ("history", "pylife history --json"), ("info_after", "pylife info {victim} --json")]
        return run_session(debugger, "live", workdir,
                           _setup(debugger, target, [str(BUGGY / "scenarios.py"), scenario, "--stop"]),
                           commands, truth=out, env={"PYLIFE_LOG_DIR": str(workdir)})
    return once(root, f"{scenario}-{debugger}-{build_name}", make)


def _crash_session(root: Path, debugger: str, build_name: str) -> Session:
    def make(workdir: Path) -> Session:
        reason = debugger_skip_reason(debugger)
        if reason:
            pytest.skip(reason)
        target = _make_build(root / "builds", build_name)
        out = workdir / "scenario.jsonl"
        target.env = {**target.env, "PYTHONPATH": str(build(target.original, root / "buggy")),
                      "PYLIFE_SCENARIO_OUT": str(out), "PYTHONMALLOC": "debug"}
        commands = [("launch", "run" if debugger == "gdb" else "process launch"),
                    ("diagnose", "pylife diagnose --json")]
        return run_session(debugger, "live", workdir,
                           _setup(debugger, target, [str(BUGGY / "scenarios.py"), "over_decref_crash"], launch=False),
                           commands, truth=out)
    return once(root, f"crash-{debugger}-{build_name}", make)


def _history(session: Session) -> dict[str, Any]:
    (history,) = session.json("history")["objects"]
    assert history["address"] == (session.truth or {}).get("victim"), session.describe()
    return history


PARAMS = [pytest.param(d, b, id=f"{d}-{b}", marks=getattr(pytest.mark, d)) for d in DEBUGGERS for b in BUILDS]
SCENARIO_PARAMS = [pytest.param(d, b, id=f"{d}-{b}", marks=getattr(pytest.mark, d))
                   for d in DEBUGGERS for b in SCENARIO_BUILDS]


@pytest.mark.parametrize("debugger,build_name", PARAMS)
def test_version_info_and_bt(root: Path, debugger: str, build_name: str) -> None:
    session = _objects_session(root, debugger, build_name)
    truth = session.truth
    assert truth is not None, session.describe()
    version = session.json("version")
    symbols = version["symbols"]
    assert symbols["dynamic"] and not symbols["dwarf"], symbols  # F6
    assert symbols["symtab"] is build_name.endswith("strip-debug"), symbols
    assert symbols["degraded"] and "degraded" in session.record("version_text").output
    for name in OBJECTS:
        data = session.json(f"info:{name}")
        expected = truth["objects"][name]
        assert (data["type"], data["refcnt"]) == (expected["type"], truth["refs"][name]["refcnt"]), data
        # Alive, with evidence (a pool found by its header, the arena table, a glibc chunk)
        # or UNKNOWN: never FREED.
        assert data["verdict"] in ("ALIVE", "UNKNOWN"), data
        assert data["verdict"] == "ALIVE" or name == "instance", data
    # pymalloc's arenas: in the interpreter state from 3.12; statics before (.symtab only).
    pymalloc = session.record("pymalloc")
    if build_name.startswith("3.12") or build_name.endswith("strip-debug"):
        assert pymalloc.error is None and session.json("pymalloc"), pymalloc
    else:
        assert pymalloc.error is None or "\n" not in pymalloc.error.strip(), pymalloc
    (thread, *_others) = session.json("bt")["threads"]
    native = [f for f in thread["frames"] if f["kind"] == "native"]
    assert any(f["kind"] == "python" for f in thread["frames"])
    assert all(f["function"] for f in native), native  # F5: nothing unnamed
    assert not any(f["function"].startswith("___lldb_unnamed") for f in native), native
    if not build_name.endswith("strip-debug"):
        assert any(UNNAMED.match(f["function"]) for f in native), native


@pytest.mark.parametrize("build_name", BUILDS)
def test_unnamed_frames_are_the_same_in_gdb_and_lldb(root: Path, build_name: str) -> None:
    """F5: the same stop, the same binary: the interpreter's C frames carry the same names."""
    names = {}
    for debugger in DEBUGGERS:
        session = _objects_session(root, debugger, build_name)
        (thread, *_others) = session.json("bt")["threads"]
        names[debugger] = [f["function"] for f in thread["frames"] if f["kind"] == "native"
                           and os.path.basename(f["module"] or "").startswith(("libpython", "python"))]
    assert names["gdb"] == names["lldb"], names


@pytest.mark.parametrize("debugger,build_name", SCENARIO_PARAMS)
def test_use_after_free_of_a_non_gc_object_is_caught(root: Path, debugger: str, build_name: str) -> None:
    """F1: pymalloc's free-list link is the allocator (not a reuse); the use after free stops."""
    session = _scenario_session(root, debugger, build_name, "over_decref_bytes")
    assert session.json("watch")["type"] == "bytes"
    history = _history(session)
    kinds = [e["kind"] for e in history["events"]]
    assert "zero" in kinds and "reuse" not in kinds, history["events"]
    after = kinds[kinds.index("zero") + 1:]
    misuse = [k in ("use-after-free", "decref-after-free") for k in after]
    assert any(misuse), history["events"]
    # Before the misuse only the allocator wrote (pymalloc's link; none when the pool was full).
    assert set(after[:misuse.index(True)]) <= {"allocator"}, history["events"]
    continued = session.record("continue")
    assert "use after free" in continued.output + (continued.error or "") + session.transcript
    # F3: at the use after free the victim is freed (its block on the pool's free list), never ALIVE.
    verdict = session.json("info_after")
    assert verdict["verdict"] in ("FREED", "UNKNOWN") and verdict["stale_type"] in ("bytes", None), verdict


@pytest.mark.parametrize("debugger,build_name", SCENARIO_PARAMS)
def test_freeing_a_large_object_does_not_stop(root: Path, debugger: str, build_name: str) -> None:
    """F2: glibc's tcache link in a freed 600-byte bytes is the allocator's; nothing stops."""
    session = _scenario_session(root, debugger, build_name, "free_big")
    truth = session.truth or {}
    history = _history(session)
    kinds = [e["kind"] for e in history["events"]]
    assert "zero" in kinds and kinds[kinds.index("zero") + 1] == "allocator", history["events"]
    assert not {"use-after-free", "decref-after-free"} & set(kinds), history["events"]
    assert truth.get("phase") == "after", "the program did not run to its end"
    if truth.get("reused"):
        assert kinds[-1] == "reuse", history["events"]
    assert "use after free" not in session.record("continue").output


@pytest.mark.parametrize("debugger,build_name", [p for p in SCENARIO_PARAMS if "3.10" not in p.id])
def test_diagnose_names_the_use_after_free(root: Path, debugger: str, build_name: str) -> None:
    """PYTHONMALLOC=debug, no symbols: the victim FREED by its 0xDD fill, the live objects ALIVE
    (on 3.12 the hooks are known from _PyRuntime.allocators, so their header is accounted for)."""
    session = _crash_session(root, debugger, build_name)
    truth = session.truth or {}
    assert truth.get("phase") == "before" and "crashed" not in truth, session.describe()
    data = session.json("diagnose")
    assert data["kind"] == "use-after-free", data["summary"]
    (victim,) = [o for o in data["objects"] if o["address"] == truth["victim"]]
    assert victim["verdict"] == "FREED" and any("0xDD" in r for r in victim["reasons"]), victim
    # Other freed blocks a register still points at (diagnose searches registers into
    # 0xDD fill) are FREED on the same evidence; nothing is called CORRUPT.
    for other in [o for o in data["objects"] if o["verdict"] not in ("ALIVE", "UNKNOWN")]:
        assert other["verdict"] == "FREED" and any("0xDD" in r for r in other["reasons"]), data["objects"]
        assert other is victim or other["source"].startswith("register"), data["objects"]
    if build_name.startswith("3.12"):
        alive = [o for o in data["objects"] if o["verdict"] == "ALIVE"]
        assert alive and not any("bytes into its block" in r for o in alive for r in o["reasons"]), alive
