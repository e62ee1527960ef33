"""The `pylife` command line, declared once and shared by both debuggers.

Adapters call :func:`execute` with the argument vector; it parses, runs the
verb against the session and returns the text to print. Errors come back as
:class:`CommandFailed` (one line) so each adapter can use its own error channel.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from ..errors import PylifeError, UserError
from ..render import text as text_render
from ..render.escape import escape
from ..report import Report
from ..session import Session
from . import alloc_site, bt, diagnose, frame, history, info, leaks, pymalloc, version, watch

Runner = Callable[[Session, argparse.Namespace], Report]
VERBS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Runner, str]] = {
    "info": (info.add_arguments, info.run, info.HELP),
    "version": (version.add_arguments, version.run, version.HELP),
    "bt": (bt.add_arguments, bt.run, bt.HELP),
    "frame": (frame.add_arguments, frame.run, frame.HELP),
    "watch": (watch.add_arguments, watch.run, watch.HELP),
    "unwatch": (watch.add_unwatch_arguments, watch.run_unwatch, watch.UNWATCH_HELP),
    "watches": (watch.add_watches_arguments, watch.run_watches, watch.WATCHES_HELP),
    "history": (history.add_arguments, history.run, history.HELP),
    "leaks": (leaks.add_arguments, leaks.run, leaks.HELP),
    "pymalloc": (pymalloc.add_arguments, pymalloc.run, pymalloc.HELP),
    "alloc-site": (alloc_site.add_arguments, alloc_site.run, alloc_site.HELP),
    "diagnose": (diagnose.add_arguments, diagnose.run, diagnose.HELP),
}

DESCRIPTION = "Trace the lifetime of CPython objects: type, refcount, GC state and value, read from memory."


class CommandFailed(Exception):
    """A one-line error for the debugger's error channel."""


class _HelpShown(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class _Parser(argparse.ArgumentParser):
    """argparse that never exits the host debugger and never prints by itself."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message} (see '{self.prog} --help')")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise _HelpShown(message or "")

    def _print_message(self, message: str, file: object = None) -> None:
        raise _HelpShown(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pylife", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for name, (add_arguments, _run, help_text) in VERBS.items():
        verb_parser = sub.add_parser(name, help=help_text, description=help_text)
        verb_parser.add_argument("--json", action="store_true", help="print one line holding one JSON object")
        add_arguments(verb_parser)
    return parser


def help_text() -> str:
    try:
        build_parser().parse_args(["--help"])
    except _HelpShown as shown:
        return shown.text
    return DESCRIPTION


def json_line(report: Report) -> str:
    """The JSON contract: one line holding one JSON document, the report's data."""
    return json.dumps(report.data, separators=(", ", ": ")) + "\n"


def execute(session: Session, argv: list[str], color: bool = False) -> str:
    """Run one `pylife ...` command line; return what to print, or raise CommandFailed."""
    parser = build_parser()
    want_json = "--json" in argv
    try:
        args = parser.parse_args(argv)
        if args.verb is None:
            return help_text()
        _add, run, _help = VERBS[args.verb]
        report = run(session, args)
    except _HelpShown as shown:
        return shown.text
    except PylifeError as exc:
        message = str(exc)
        if want_json:
            return json.dumps({"error": message}) + "\n"
        # One line, escaped: messages quote target text (names, debugger errors).
        message = escape(" ".join(message.split("\n")))
        raise CommandFailed(message if message.startswith("pylife") else f"pylife: {message}") from None
    if args.json:
        return json_line(report)
    return text_render.render(report, color=color)
