"""Alive, freed or corrupt: `pylife info` verdicts, `pylife pymalloc` and `pylife alloc-site`.

Real gdb and lldb-16 x CPython 3.8/3.10/3.11/3.12/3.13 x live and core x two
allocator set-ups, against tests/fixtures/liveness_fixture.py:

- "pymalloc": the default allocator, run with ``-X tracemalloc=25`` (so the
  allocator is found under tracemalloc's hooks, and alloc-site has traces);
- "debug": ``PYTHONMALLOC=debug`` (0xDD fill, debug headers; tracemalloc off,
  and sys._debugmallocstats() prints pymalloc's numbers to compare with).

One debugger session per (debugger, version, set-up, live|core); lldb-16
cannot write ELF cores, so both debuggers open the core gdb's gcore wrote.
The same expectations hold for both debuggers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .driver import Session, run_session
from .environment import DEBUGGERS, REPO_ROOT
from .once import once, require, shared_root

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "liveness_fixture.py"
MINORS = ("3.8", "3.10", "3.11", "3.12", "3.13")
ALLOCS = ("pymalloc", "debug")
NAMES = ("alive", "alive_slots", "large_alive", "static_none", "static_type", "static_small_int", "freed",
         "freed_large", "tuple_freelist", "float_freelist", "smashed", "reused")
TRACED = ("alive", "alive_slots", "large_alive")


def _commands() -> list[tuple[str, str]]:
    commands = [(f"info:{name}", f"pylife info {{{name}}} --json") for name in NAMES]
    commands += [(f"text:{name}", f"pylife info {{{name}}}") for name in ("freed", "smashed", "alive")]
    commands += [(f"alloc_site:{name}", f"pylife alloc-site {{{name}}} --json") for name in TRACED]
    commands += [("alloc_site_text", "pylife alloc-site {alive}"), ("pymalloc", "pylife pymalloc --json"),
                 ("pymalloc_text", "pylife pymalloc")]
    return commands


def _make(debugger: str, minor: str, alloc: str, mode: str, root: Path) -> Session:
    python = str(require(debugger, minor))
    if mode == "live":
        def live(workdir: Path) -> Session:
            truth = workdir / "truth.json"
            core = workdir / "liveness.core"
            if debugger == "gdb":
                setup = (["set environment PYTHONMALLOC debug"] if alloc == "debug" else []) + ["run"]
            else:
                setup = (["settings set target.env-vars PYTHONMALLOC=debug"] if alloc == "debug" else [])
                setup.append("process launch")
            commands = _commands()
            if debugger == "gdb":
                commands.append(("save_core", f"gcore {core}"))
            program = [python, *(["-X", "tracemalloc=25"] if alloc == "pymalloc" else []), str(FIXTURE), str(truth)]
            session = run_session(debugger, "live", workdir, setup, commands, program=program, truth=truth)
            if core.exists():
                session.core = core
            return session
        return once(root, f"{debugger}-{minor}-{alloc}-live", live)

    def from_core(workdir: Path) -> Session:
        origin = _make("gdb", minor, alloc, "live", root)
        if origin.core is None or origin.truth_path is None:
            pytest.skip(f"gdb wrote no core for {minor} ({alloc})")
        setup = ([f"file {python}", f"core-file {origin.core}"] if debugger == "gdb"
                 else [f"target create --core {origin.core} {python}"])
        return run_session(debugger, "core", workdir, setup, _commands(), truth=origin.truth_path)
    return once(root, f"{debugger}-{minor}-{alloc}-core", from_core)


@pytest.fixture(scope="module")
def liveness_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_root(tmp_path_factory, "pylife-liveness")


def _params(allocs: tuple[str, ...] = ALLOCS) -> list[Any]:
    return [pytest.param(debugger, minor, alloc, mode, id=f"{debugger}-{minor}-{alloc}-{mode}",
                         marks=getattr(pytest.mark, debugger))
            for debugger in DEBUGGERS for minor in MINORS for alloc in allocs for mode in ("live", "core")]


ARGS = "debugger,minor,alloc,mode"


@pytest.fixture
def session(liveness_root: Path, debugger: str, minor: str, alloc: str, mode: str) -> Session:
    session = _make(debugger, minor, alloc, mode, liveness_root)
    assert session.truth is not None, f"the fixture wrote no truth\n{session.describe()}"
    return session


def _info(session: Session, name: str) -> dict[str, Any]:
    data = session.json(f"info:{name}")
    assert "verdict" in data, f"{name}: no verdict in {data}"
    assert data["address"] == session.truth["objects"][name]["address"]  # type: ignore[index]
    return data


def _size_class(size: int, debug: bool) -> int:
    """pymalloc's size class for a request of ``size`` bytes (+ the debug hooks' 24)."""
    request = size + (24 if debug else 0)
    return -(-request // 16) * 16


# ---- alive and static ---------------------------------------------------------------


@pytest.mark.parametrize(ARGS, _params())
def test_alive(session: Session, alloc: str) -> None:
    truth = session.truth["objects"]  # type: ignore[index]
    debug = alloc == "debug"
    for name in ("alive", "alive_slots"):
        data = _info(session, name)
        facts = data["allocator"]
        assert data["verdict"] == "ALIVE", data
        assert data["type"] == truth[name]["type"]
        assert facts["name"] == "pymalloc" and facts["debug_hooks"] is debug, facts
        assert facts["region"] == "pymalloc" and facts["block_state"] == "allocated", facts
        # 3.13 allocates a Foo's inline attribute values in its block too (not in getsizeof).
        assert facts["size_class"] >= _size_class(truth[name]["size"], debug), (name, facts, truth[name])
        if name == "alive_slots":
            assert facts["size_class"] == _size_class(truth[name]["size"], debug), (name, facts, truth[name])
        assert facts["block"] == truth[name]["address"] - truth[name]["preheader"] - (16 if debug else 0)
        if debug:
            assert facts["debug_api"] == "o" and facts["debug_pads_ok"] is True, facts
            assert facts["debug_trailer_ok"] is True, facts
    large = _info(session, "large_alive")
    assert large["verdict"] == "ALIVE" and large["type"] == "tuple", large
    assert large["allocator"]["region"] == "malloc" and large["allocator"]["chunk_in_use"] is True, large
    assert large["allocator"]["chunk_size"] >= truth["large_alive"]["size"], large


@pytest.mark.parametrize(ARGS, _params())
def test_static(session: Session, minor: str) -> None:
    for name in ("static_none", "static_type"):
        data = _info(session, name)
        assert data["verdict"] == "ALIVE", data
        assert data["allocator"]["region"] == "static", data
        assert "libpython" in data["allocator"]["section"], data
        assert any("static object" in r for r in data["reasons"]), data
    # Small ints: a static array in 3.8 (longobject.c small_ints), allocated
    # per interpreter in 3.9/3.10, static inside _PyRuntime from 3.11.
    small = _info(session, "static_small_int")
    assert small["verdict"] == "ALIVE", small
    where = {"3.8": "static", "3.9": "pymalloc", "3.10": "pymalloc"}.get(minor, "static")
    assert small["allocator"]["region"] == where, small
    if tuple(int(x) for x in minor.split(".")) >= (3, 11):
        assert small["allocator"]["section"] == "_PyRuntime", small


# ---- freed --------------------------------------------------------------------------


@pytest.mark.parametrize(ARGS, _params())
def test_freed_block_still_free(session: Session, alloc: str) -> None:
    data = _info(session, "freed")
    facts = data["allocator"]
    assert data["verdict"] == "FREED", data
    assert facts["region"] == "pymalloc" and facts["block_state"] == "free", facts
    assert any("free list of its pymalloc pool" in r for r in data["reasons"]), data
    if alloc == "debug":
        assert any("0xDD" in r for r in data["reasons"]), data
        assert data["stale_type"] is None
    else:
        assert data["stale_type"] == "__main__.Slots", data
        assert data["type"] == "__main__.Slots"  # the info keys are still there
    text = session.record("text:freed").output
    assert "FREED" in text and "verdict" in text, text


@pytest.mark.parametrize(ARGS, _params())
def test_freed_large_malloc_block(session: Session, alloc: str) -> None:
    data = _info(session, "freed_large")
    facts = data["allocator"]
    assert data["verdict"] == "FREED", data
    assert facts["region"] == "malloc", facts
    assert facts.get("chunk_in_use") is False or facts.get("chunk_tcache") is True, facts
    if alloc == "debug":
        assert any("0xDD" in r for r in data["reasons"]), data


@pytest.mark.parametrize(ARGS, _params())
def test_free_lists(session: Session) -> None:
    seven = _info(session, "tuple_freelist")
    assert seven["verdict"] == "FREED" and seven["stale_type"] == "tuple", seven
    assert any("refcount 0 with an intact type" in r for r in seven["reasons"]), seven
    floating = _info(session, "float_freelist")
    assert floating["verdict"] == "FREED" and floating["stale_type"] == "float", floating
    assert any("float free list" in r for r in floating["reasons"]), floating


@pytest.mark.parametrize(ARGS, _params(("pymalloc",)))
def test_block_reused_by_a_new_object(session: Session) -> None:
    reused = session.truth["objects"].get("reused")  # type: ignore[union-attr]
    if reused is None:
        pytest.fail(f"the fixture could not make a freed block be reused\n{session.describe()}")
    data = session.json("info:reused")
    if reused["stale_type_survives"]:
        assert data["verdict"] == "FREED", data
        assert data["stale_type"] == reused["stale_type"], data
        assert data["allocator"]["new_type"] == "bytes", data
        assert data["allocator"]["new_object"] == reused["new_object"], data
        assert any("reused" in r for r in data["reasons"]), data
    else:
        # Before 3.11 the new object overwrote the old header: only "a pointer
        # into a bytes object, or a stale pointer into a reused block" is sure.
        assert list(data) == ["error"], data
        assert f"bytes object at {reused['new_object']:#x}" in data["error"] and "reused" in data["error"], data


# ---- corrupt -----------------------------------------------------------------------


@pytest.mark.parametrize(ARGS, _params())
def test_smashed_type(session: Session, alloc: str) -> None:
    data = _info(session, "smashed")
    assert data["verdict"] == "CORRUPT", data
    assert "not a type object" in data["error"], data
    assert data["allocator"]["region"] == "pymalloc" and data["allocator"]["block_state"] == "allocated", data
    if alloc == "debug":
        assert data["allocator"]["debug_api"] == "o", data
    text = session.record("text:smashed")
    assert text.error is None and "CORRUPT" in text.output and "No live PyObject" in text.output, text


# ---- alloc-site -----------------------------------------------------------------------


@pytest.mark.parametrize(ARGS, _params(("pymalloc",)))
def test_alloc_site(session: Session) -> None:
    tracebacks = dict(session.truth["tracebacks"])  # type: ignore[index]
    if tracebacks["alive"] is None:
        # 3.11's tracemalloc.get_object_traceback() subtracts only the GC head, not
        # the managed-dict pre-header, and misses a Foo; pylife finds its trace:
        # make_alive() builds the Foo one line above the Slots.
        *outer, (file, line) = tracebacks["alive_slots"]
        tracebacks["alive"] = [*outer, [file, line - 1]]
    for name in TRACED:
        data = session.json(f"alloc_site:{name}")
        assert data["traced"] is True, data
        assert [[f["file"], f["line"]] for f in data["frames"]] == tracebacks[name], data
    text = session.record("alloc_site_text")
    assert text.error is None and "most recent call last" in text.output and "liveness_fixture.py" in text.output


@pytest.mark.parametrize(ARGS, _params(("debug",)))
def test_alloc_site_without_tracemalloc(session: Session) -> None:
    data = session.json("alloc_site:alive")
    assert list(data) == ["error"] and "tracemalloc is not tracing" in data["error"], data
    assert "-X tracemalloc" in (session.record("alloc_site_text").error or "")


# ---- pymalloc -------------------------------------------------------------------------


_CLASS_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$")


def _mallocstats(path: str) -> tuple[int, dict[int, tuple[int, int]]]:
    """(arenas allocated now, size -> (pools, blocks in use)) from sys._debugmallocstats()."""
    text = Path(path).read_text()
    arenas = int(re.search(r"# arenas allocated current\s*=\s*([\d,]+)", text).group(1).replace(",", ""))  # type: ignore[union-attr]
    classes = {}
    for line in text.splitlines():
        match = _CLASS_ROW.match(line)
        if match:
            _index, size, pools, used, _avail = (int(x) for x in match.groups())
            classes[size] = (pools, used)
    return arenas, classes


@pytest.mark.parametrize(ARGS, _params())
def test_pymalloc_stats(session: Session, alloc: str) -> None:
    data = session.json("pymalloc")
    assert data["arenas"] >= 1 and data["pools"]["used"] >= 1, data
    classes = {c["size"]: c for c in data["classes"]}
    slots_class = _size_class(session.truth["objects"]["alive_slots"]["size"], alloc == "debug")  # type: ignore[index]
    assert classes[slots_class]["blocks_used"] >= 30, classes.get(slots_class)  # the fixture's Slots instances
    assert "pools" in session.record("pymalloc_text").output
    if alloc != "debug":
        return  # under tracemalloc's hooks sys._debugmallocstats() prints no pymalloc numbers
    arenas, expected = _mallocstats(session.truth["mallocstats"])  # type: ignore[index]
    assert data["arenas"] == arenas
    # A few objects were freed (and the stop allocates a little) after the snapshot.
    for size, (pools, used) in expected.items():
        got = classes.get(size, {"pools": 0, "blocks_used": 0})
        assert abs(got["pools"] - pools) <= 1, (size, got, pools)
        assert abs(got["blocks_used"] - used) <= max(8, used // 50), (size, got, used)
