"""GDB adapter: GdbTarget and the one `pylife` command.

Only translation lives here: gdb API <-> Target, argv <-> pylife.commands,
PylifeError <-> gdb.GdbError.
"""

from __future__ import annotations

from collections.abc import Sequence

import gdb  # type: ignore[import-not-found]

from .. import env
from ..commands import CommandFailed, execute, help_text
from ..errors import UnreadableMemory, UserError
from ..session import Session
from ..target import Module, NativeFrame, TargetKind, ThreadInfo


class GdbTarget:
    debugger = "gdb"

    def __init__(self, inferior: gdb.Inferior) -> None:
        self.inferior = inferior

    @property
    def kind(self) -> TargetKind:
        connection = getattr(self.inferior, "connection", None)
        if connection is not None and getattr(connection, "type", "") == "core":
            return TargetKind.CORE
        return TargetKind.LIVE

    def read(self, address: int, size: int) -> bytes:
        try:
            return bytes(self.inferior.read_memory(address, size))
        except (gdb.MemoryError, gdb.error, OverflowError, ValueError) as exc:
            raise UnreadableMemory(address, size, str(exc).split("\n")[0]) from None

    def symbol_address(self, name: str) -> int | None:
        try:
            value = gdb.parse_and_eval(f"(unsigned long)&'{name}'")
        except gdb.error:
            return None
        address = int(value)
        return address or None

    def modules(self) -> Sequence[Module]:
        result: list[Module] = []
        main = gdb.current_progspace().filename
        if main:
            result.append(Module(main, 0))
        for objfile in gdb.objfiles():
            if objfile.is_valid() and objfile.filename and objfile.filename != main:
                result.append(Module(objfile.filename, 0))
        return result

    def threads(self) -> Sequence[ThreadInfo]:
        return [ThreadInfo(t.ptid[1] or t.ptid[0], t.name, None) for t in self.inferior.threads()]

    def native_frames(self, tid: int, limit: int) -> Sequence[NativeFrame]:
        return []

    def evaluate_address(self, expression: str) -> int:
        try:
            value = gdb.parse_and_eval(expression)
            code = value.type.strip_typedefs().code
            if code in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION) and value.address is not None:
                value = value.address
            return int(value.cast(gdb.lookup_type("unsigned long"))) & ((1 << 64) - 1)
        except gdb.error as exc:
            raise UserError(f"cannot evaluate '{expression}': {exc}") from None


_sessions: dict[int, Session] = {}


def session_for(inferior: gdb.Inferior) -> Session:
    session = _sessions.get(inferior.num)
    if session is None or getattr(session.target, "inferior", None) is not inferior:
        session = Session(GdbTarget(inferior))
        _sessions[inferior.num] = session
    return session


def _reset_all(_event: object = None) -> None:
    for session in _sessions.values():
        session.reset()


class PylifeCommand(gdb.Command):
    def __init__(self) -> None:
        super().__init__("pylife", gdb.COMMAND_DATA)

    def invoke(self, argument: str, from_tty: bool) -> None:
        env.warn_missing_once(gdb.write)
        try:
            output = execute(session_for(gdb.selected_inferior()), gdb.string_to_argv(argument))
        except CommandFailed as exc:
            raise gdb.GdbError(str(exc)) from None
        gdb.write(output)


def register() -> None:
    PylifeCommand.__doc__ = help_text()
    PylifeCommand()
    for registry in (gdb.events.new_objfile, gdb.events.clear_objfiles, gdb.events.exited):
        registry.connect(_reset_all)
