"""gdb's events and the one `pylife` command: what happened, handed to pylife.lifecycle.

Only translation lives here: gdb events -> the core's one sequence,
argv <-> pylife.commands, PylifeError <-> gdb.GdbError.
"""

from __future__ import annotations

import gdb

from .. import env, lifecycle
from ..commands import CommandFailed, execute, help_text
from ..render.color import stdout_is_terminal, wants_color
from .gdb import session_for, sessions
from .gdb_breakpoints import PylifeHit, runs


def _color() -> bool:
    try:
        style = bool(gdb.parameter("style enabled"))
    except (gdb.error, RuntimeError):
        style = False
    return wants_color(style, stdout_is_terminal())


def _modules_changed(_event: object = None) -> None:
    # A library was loaded (libpython during `run`) or all were dropped: pending hooks may be placed.
    for session in sessions():
        lifecycle.modules_changed(session)
        lifecycle.safe_point(session)


def _on_exit(event: object = None) -> None:
    # gdb.ExitedEvent.exit_code is absent when gdb does not know it (e.g. after `kill`).
    status = getattr(event, "exit_code", None)
    for session in sessions():
        screen = lifecycle.exit_summary(session, int(status) if status is not None else None)
        if screen:
            gdb.write(screen)
        lifecycle.process_gone(session)


def _on_stop(_event: object = None) -> None:
    runs.count += 1
    for session in sessions():
        lifecycle.safe_point(session)  # delete watchpoints retired inside stop() callbacks
        lifecycle.ran(session)


def _on_resume(_event: object = None) -> None:
    runs.count += 1
    for session in sessions():
        lifecycle.ran(session)


class PylifeCommand(gdb.Command):
    def __init__(self) -> None:
        super().__init__("pylife", gdb.COMMAND_DATA)

    def invoke(self, argument: str, from_tty: bool) -> None:
        env.warn_missing_once(gdb.write)
        session = session_for(gdb.selected_inferior())
        lifecycle.safe_point(session)
        try:
            output = execute(session, gdb.string_to_argv(argument), color=_color())
        except CommandFailed as exc:
            raise gdb.GdbError(str(exc)) from None
        gdb.write(output)


def register() -> None:
    PylifeCommand.__doc__ = help_text()
    PylifeCommand()
    PylifeHit()
    gdb.events.new_objfile.connect(_modules_changed)
    gdb.events.clear_objfiles.connect(_modules_changed)
    gdb.events.exited.connect(_on_exit)
    gdb.events.stop.connect(_on_stop)
    gdb.events.cont.connect(_on_resume)
