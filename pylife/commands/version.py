"""`pylife version`: which CPython the target runs and how pylife reads it."""

from __future__ import annotations

import argparse

from .. import __version__
from ..report import Report
from ..session import Session

HELP = "show the target's CPython version, build, libpython and the layout source"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options besides --json


def run(session: Session, args: argparse.Namespace) -> Report:
    runtime = session.runtime()
    version = runtime.version
    data = {
        "version": str(version),
        "major": version.major,
        "minor": version.minor,
        "micro": version.micro,
        "build": "debug" if version.debug else "release",
        "threading": "free-threaded" if version.free_threaded else "GIL",
        "libpython": runtime.libpython,
        "linked_into_executable": runtime.libpython is None,
        "executable": runtime.executable,
        "runtime_address": runtime.address,
        "layout_source": runtime.layout.source,
        "target": session.target.kind.value,
        "debugger": session.target.debugger,
        "pylife": __version__,
        "warnings": list(runtime.layout.warnings),
    }
    return Report("version", data, warnings=list(runtime.layout.warnings))
