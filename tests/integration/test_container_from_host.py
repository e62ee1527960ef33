"""Debug a container from the host: this machine's gdb 13 and lldb-16 attach to a
CPython 3.14/3.15 running in the Debian sid root (a chroot, as a container is).

The objects fixture runs inside the root and waits in pause(2) (no Python
code runs, so no refcount moves) for the host's debugger to attach with the
root as its sysroot:

- gdb 13: ``set sysroot ROOT``, ``set debug-file-directory ROOT/usr/lib/debug``
  and ``file ROOT/usr/bin/python3.X`` before ``attach``: every module, and its
  DWARF, comes from the root.
- lldb-16: ``target create ROOT/usr/bin/python3.X`` with
  ``target.debug-file-search-paths``; lldb-16 still opens the shared libraries
  from the host's own paths (libc's build id differs from the root's), so its
  native unwinding through libc is unreliable: the test asks it only what
  reads memory (info, version) and that the Python frames are all found.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from .driver import OBJECT_NAMES, Session, run_session
from .environment import FIXTURE, SID_RELEASES, SID_ROOT, debugger_skip_reason, interpreters
from .once import once, shared_root
from .test_info import FIELDS, expected_info

COMMANDS = [(f"info:{name}", f"pylife info {{{name}}} --json") for name in OBJECT_NAMES] + [
    ("version", "pylife version --json"),
    ("bt", "pylife bt --json"),
]
START_TIMEOUT = 60


def _setup(debugger: str, python: Path, pid: int) -> list[str]:
    outside = SID_ROOT / python.relative_to("/")
    if debugger == "gdb":
        return [f"set sysroot {SID_ROOT}", f"set debug-file-directory {SID_ROOT}/usr/lib/debug",
                f"file {outside}", f"attach {pid}"]
    return [f"settings set target.debug-file-search-paths {SID_ROOT}/usr/lib/debug",
            f"target create {outside}", f"process attach --pid {pid}"]


def _detach(debugger: str) -> list[tuple[str, str]]:
    return [("detach", "detach" if debugger == "gdb" else "process detach")]


def _attached(debugger: str, minor: str, workdir: Path) -> Session:
    interpreter = interpreters()[minor]
    if interpreter is None or interpreter.root is None:
        pytest.skip(f"CPython {minor} of the sid root is not usable")
    truth = workdir / "truth.json"
    env = {**os.environ, "PYLIFE_FIXTURE_PAUSE": "1"}
    process = subprocess.Popen(["chroot", str(interpreter.root), str(interpreter.path), str(FIXTURE), str(truth)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not truth.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if not truth.exists():
            raise AssertionError(f"the fixture in the sid root wrote no truth: {process.stderr.read() if process.stderr else ''}")
        time.sleep(0.2)  # from the truth's write to pause(2): a few bytecodes
        return run_session(debugger, "attach", workdir, _setup(debugger, interpreter.path, process.pid),
                           [*COMMANDS, *_detach(debugger)], truth=truth)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def host_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_root(tmp_path_factory, "pylife-container")


PARAMS = [pytest.param(debugger, minor, id=f"host-{debugger}-{minor}", marks=getattr(pytest.mark, debugger))
          for debugger in ("gdb", "lldb") for minor in SID_RELEASES]


@pytest.fixture
def attached(host_root: Path, debugger: str, minor: str) -> Session:
    reason = debugger_skip_reason(debugger) or debugger_skip_reason(debugger, minor)
    if reason:
        pytest.skip(reason)
    return once(host_root, f"{debugger}-{minor}", lambda workdir: _attached(debugger, minor, workdir))


@pytest.mark.parametrize("debugger,minor", PARAMS)
def test_info_from_the_host(attached: Session) -> None:
    truth = attached.truth
    assert truth is not None, attached.describe()
    for name in OBJECT_NAMES:
        data = attached.json(f"info:{name}")
        got = {field: data.get(field) for field in FIELDS}
        assert got == expected_info(truth, name), f"{name}: full answer {data}"


@pytest.mark.parametrize("debugger,minor", PARAMS)
def test_version_and_python_frames_from_the_host(attached: Session, minor: str) -> None:
    version = attached.json("version")
    assert version["version"].startswith(minor + ".") and version["build"] == "release"
    assert version["executable"] == str(SID_ROOT / f"usr/bin/python{minor}")
    frames: list[dict[str, Any]] = attached.json("bt")["threads"][0]["frames"]
    python = [f["function"] for f in frames if f["kind"] == "python"]
    assert python == ["stop.<locals>.trap", "stop", "main", "<module>"], python  # co_qualname
    if attached.debugger == "gdb":  # the root's libc: the whole native stack unwinds, down to main
        native = [f["function"] for f in frames if f["kind"] == "native"]
        assert "pause" in native and "Py_BytesMain" in native, native

