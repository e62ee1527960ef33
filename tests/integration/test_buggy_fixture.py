"""The buggy C extension fixture (tests/fixtures/buggy), without a debugger.

For every installed CPython 3.8-3.13 (a missing one is skipped): build the
extension once, run every scenario in a subprocess under PYTHONMALLOC=debug
and under pymalloc, and check the symptom each bug must produce:

- leak, leak_via_iter: the victim's refcount rose by exactly n;
- touch_loop: the refcount is back where it was;
- over_decref, steal_then_decref, borrowed: the victim was freed (its weakref
  is dead) while a list still points at it, and the refcount read back through
  that pointer is freed memory: 0xDD... under PYTHONMALLOC=debug.

The crash variants over_decref_crash and borrowed_crash run under
PYTHONMALLOC=debug only (plain pymalloc keeps the stale type and may not
crash): the process dies with SIGSEGV (or SIGBUS) after the "before" line.

Plus: ``--stop`` really stops (SIGTRAP) after the "before" line and before
the bug, and a second build is a cache hit.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .environment import MINORS, REPO_ROOT, interpreters

BUGGY_DIR = REPO_ROOT / "tests" / "fixtures" / "buggy"
SCENARIOS = BUGGY_DIR / "scenarios.py"
MALLOCS = ("debug", "pymalloc")
N = 4  # repeat count given to leak / leak_via_iter / touch_loop

# What use_after_free / borrowed_across_mutation read back through the stale
# pointer: freed memory is 0xDD under PYTHONMALLOC=debug; with pymalloc the
# freed block keeps ob_refcnt == 0 and only their own increfs show.
SEEN = {
    ("over_decref", "debug"): 0xDDDDDDDDDDDDDDDF,
    ("steal_then_decref", "debug"): 0xDDDDDDDDDDDDDDDF,
    ("borrowed", "debug"): 0xDDDDDDDDDDDDDDDE,
    ("over_decref", "pymalloc"): 2,
    ("steal_then_decref", "pymalloc"): 2,
    ("borrowed", "pymalloc"): 1,
}
REFCNT_AT_STOP = {"leak": 1, "leak_via_iter": 2, "touch_loop": 1, "over_decref": 1, "steal_then_decref": 1, "borrowed": 1}


def _load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("buggy_build", BUGGY_DIR / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_module = _load_build()


class Builds:
    """One build per interpreter per test run (the build itself is cached on disk too)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.done: dict[str, Path] = {}

    def python(self, minor: str) -> Path:
        interpreter = interpreters()[minor]
        if interpreter is None:
            pytest.skip(f"CPython {minor} is not installed under pyenv")
        return interpreter.path

    def get(self, minor: str) -> tuple[Path, Path]:
        """(interpreter, directory holding its buggy extension)."""
        python = self.python(minor)
        if minor not in self.done:
            if shutil.which(os.environ.get("CC", "gcc").split()[0]) is None:
                pytest.skip("no C compiler (gcc) to build the buggy extension")
            self.done[minor] = build_module.build(python, self.out_dir)
        return python, self.done[minor]


@pytest.fixture(scope="session")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by every worker: build.py is safe to run concurrently
    out = base / "buggy-builds"
    out.mkdir(exist_ok=True)
    return Builds(out)


def run_scenario(python: Path, pythonpath: Path, scenario: str, malloc: str, *args: str,
                 out: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYLIFE_"))}
    env.update(PYTHONPATH=str(pythonpath), PYTHONMALLOC=malloc, PYTHONDONTWRITEBYTECODE="1")
    if out is not None:
        env["PYLIFE_SCENARIO_OUT"] = str(out)
    return subprocess.run(
        [str(python), str(SCENARIOS), scenario, *args],
        env=env, capture_output=True, text=True, timeout=60,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)),  # a crash must not write a core
    )


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("malloc", MALLOCS)
@pytest.mark.parametrize("scenario", list(REFCNT_AT_STOP))
@pytest.mark.parametrize("minor", MINORS)
def test_scenario_symptom(builds: Builds, minor: str, scenario: str, malloc: str) -> None:
    python, pythonpath = builds.get(minor)
    proc = run_scenario(python, pythonpath, scenario, malloc, "--n", str(N))
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    first, last = records(proc.stdout)
    assert first["phase"] == "before" and last["phase"] == "after"
    assert first["scenario"] == last["scenario"] == scenario
    assert first["victim"] == last["victim"] and first["victim_hex"] == hex(first["victim"])
    assert first["python"] == interpreters()[minor].version
    assert first["pythonmalloc"] == malloc
    assert first["refcnt"] == REFCNT_AT_STOP[scenario]

    if scenario in ("leak", "leak_via_iter"):
        assert last["refcnt_after"] - last["refcnt_before"] == N
    elif scenario == "touch_loop":
        assert last["refcnt_after"] == last["refcnt_before"] == first["refcnt"]
        assert last["touch_writes"] == 2 * N
    else:
        assert last["freed"] is True, "the victim should be dead"
        assert last["held"] is True, "the list should still point at the dead victim"
        assert last["seen_refcnt"] == SEEN[scenario, malloc], last["seen_hex"]
        assert last["seen_deadbytes"] is (malloc == "debug")


CRASHES = ("over_decref_crash", "borrowed_crash")


@pytest.mark.parametrize("scenario", CRASHES)
@pytest.mark.parametrize("minor", MINORS)
def test_crash_scenario_dies(builds: Builds, minor: str, scenario: str) -> None:
    """The freed victim's ob_type is 0xDD fill: PyObject_Repr in the guilty function faults."""
    python, pythonpath = builds.get(minor)
    proc = run_scenario(python, pythonpath, scenario, "debug")
    assert proc.returncode in (-signal.SIGSEGV, -signal.SIGBUS, -signal.SIGABRT), \
        f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    (only,) = records(proc.stdout)
    assert only["phase"] == "before" and only["scenario"] == scenario and only["refcnt"] == 1
    assert only["pythonmalloc"] == "debug" and only["victim_type"] == "__main__.Victim"


@pytest.mark.parametrize("minor", MINORS)
def test_stop_comes_before_the_bug(builds: Builds, minor: str, tmp_path: Path) -> None:
    """Without a debugger, SIGTRAP kills the process: the "before" line is out, the bug has not run."""
    python, pythonpath = builds.get(minor)
    out = tmp_path / "records.jsonl"
    proc = run_scenario(python, pythonpath, "over_decref", "debug", "--stop", out=out)
    assert proc.returncode == -signal.SIGTRAP, f"exit {proc.returncode}\n{proc.stderr}"
    assert proc.stdout == ""
    (only,) = records(out.read_text())
    assert only["phase"] == "before" and only["stop"] is True and only["refcnt"] == 1


def test_build_is_cached(builds: Builds, monkeypatch: pytest.MonkeyPatch) -> None:
    minor = next((m for m in reversed(MINORS) if interpreters()[m] is not None), None)
    if minor is None:
        pytest.skip("no CPython 3.8-3.13 installed under pyenv")
    python, first = builds.get(minor)

    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a cached build ran {args}")

    monkeypatch.setattr(build_module.subprocess, "run", no_subprocess)  # neither the interpreter nor gcc
    started = time.monotonic()
    again = build_module.build(python, builds.out_dir)
    elapsed = time.monotonic() - started
    assert again == first
    assert elapsed < 0.5, f"a cached build took {elapsed:.3f}s"
    (extension,) = first.glob("buggy.*.so")
    assert extension.name.startswith(f"buggy.cpython-{minor.replace('.', '')}")
    meta = json.loads((first / build_module.MARKER).read_text())
    assert meta["compiler_output"] == "", "buggy.c must build warning-free"
