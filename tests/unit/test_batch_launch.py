"""The driver's own plumbing (pylife.batch.launch): output pass-through, pylife's lines, the progress tail."""

from __future__ import annotations

import io
import os
from pathlib import Path

from pylife.batch import launch


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_pylife_lines_are_prefixed_and_no_status_off_a_terminal() -> None:
    stream = io.StringIO()
    output = launch.Output(stream)
    output.status("3 events")
    output.say("one\ntwo")
    output.done()
    assert stream.getvalue() == "pylife: one\npylife: two\n"


def test_the_status_line_is_cleared_before_other_lines_on_a_terminal() -> None:
    stream = Terminal()
    output = launch.Output(stream)
    output.status("3 events")
    output.say("done")
    assert stream.getvalue() == "\r\x1b[Kpylife: 3 events\r\x1b[Kpylife: done\n"


def test_program_output_passes_through_byte_for_byte(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    copier = launch.Passthrough(tmp_path / "out", write_end, launch.Output(io.StringIO()))
    copier.start()
    payload = b"no newline \xff\xfe binary \x1b[31m" * 1000
    with open(tmp_path / "out", "wb") as program:  # the program's stdout
        program.write(payload)
    copier.finished.set()
    copier.join(timeout=10)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as copied:
        assert copied.read() == payload


def test_the_tail_reads_whole_lines_only(tmp_path: Path) -> None:
    workspace = launch.Workspace(tmp_path, tmp_path / "history.jsonl")
    workspace.events.write_text('{"record": "started", "pid": 42}\n{"record": "step", "step": "watch", "ok": false, '
                                '"error": "bad\\u202e"}\n{"record": "st')
    workspace.history_log.write_text('{"record":"watch","address":1}\n{"record":"event"}\n{"record":"event"}\n')
    said: list[str] = []
    tail = launch.EventTail(workspace)
    tail.poll(said.append)
    assert tail.pid == 42 and (tail.events, tail.objects) == (2, 1)
    assert said == ["watch failed: bad\\u202e"]  # escaped: the error names target text
    with open(workspace.events, "a") as handle:
        handle.write('op", "message": "pylife: use after free"}\n')
    tail.poll(said.append)
    assert said[-1] == "use after free"


def test_the_debugger_command_lines() -> None:
    gdb = launch.debugger_argv("gdb", Path("/w/config.json"))
    assert gdb[:3] == ["gdb", "-nx", "-batch"] and gdb[-1].endswith("main('/w/config.json')")
    lldb = launch.debugger_argv("lldb", Path("/w/config.json"))
    assert lldb[:3] == ["lldb-16", "-b", "--no-lldbinit"] and lldb[-2:] == ["-k", "process kill"]
