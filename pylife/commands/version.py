"""`pylife version`: which CPython the target runs and how pylife reads it."""

from __future__ import annotations

import argparse

from .. import __version__
from ..report import Report
from ..session import Session
from ..symbols import symbol_inventory

HELP = "show the target's CPython version, build, libpython and the layout source"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options besides --json


def run(session: Session, args: argparse.Namespace) -> Report:
    runtime = session.runtime()
    version = runtime.version
    symbols = symbol_inventory(session.target)
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
        "symbols": symbols.to_json(),
        "warnings": list(runtime.layout.warnings),
    }
    warnings = list(runtime.layout.warnings)
    if not symbols.symtab or not symbols.dwarf:
        warnings.append(f"CPython's symbols: {symbols.summary}; see 'degraded' for what works differently")
    return Report("version", data, warnings=warnings)
