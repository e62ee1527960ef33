"""Plain-text rendering of reports, with tabulate when it is installed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..report import Report

try:  # runtime dependency; degrade to a simple aligned layout without it
    from tabulate import tabulate as _tabulate
except ImportError:  # pragma: no cover - exercised when the venv is missing
    _tabulate = None

# C0, DEL and C1 (U+0080-U+009F: e.g. U+009B is a one-character CSI for many terminals).
_CONTROL = {i: f"\\x{i:02x}" for i in [*range(0x20), *range(0x7F, 0xA0)]}


def escape(text: str) -> str:
    """Make target-controlled text safe for a terminal (no control characters)."""
    return text.translate(_CONTROL)


def key_value_table(rows: list[tuple[str, str]]) -> str:
    rows = [(key, escape(value)) for key, value in rows]
    if _tabulate is not None:
        return str(_tabulate(rows, tablefmt="plain"))
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[escape(str(c)) for c in row] for row in rows]
    if _tabulate is not None:
        return str(_tabulate(cells, headers=headers, tablefmt="simple"))
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def _bold(text: str, color: bool) -> str:
    return f"\x1b[1m{text}\x1b[0m" if color else text


def _info(data: dict[str, Any], color: bool) -> str:
    gc = data["gc"]
    if gc["tracked"] is None:
        gc_text = "unknown"
    elif not gc["tracked"]:
        gc_text = "not tracked"
    elif gc["generation"] is None:
        gc_text = "tracked, generation unknown"
    elif gc["generation"] == 3:
        gc_text = "tracked, permanent generation"
    else:
        gc_text = f"tracked, generation {gc['generation']}"
    refcnt = f"{data['refcnt']}" + (" (immortal)" if data["immortal"] else "")
    rows = [
        ("type", f"{data['type']} ({data['type_address']:#x})"),
        ("refcount", refcnt),
        ("size", "unknown" if data["size"] is None else f"{data['size']} bytes"),
        ("gc", gc_text),
        ("value", data["preview"]),
    ]
    rows += [("note", note) for note in data["notes"]]
    head = _bold(f"PyObject at {data['address']:#x}", color)
    return head + "\n" + key_value_table(rows)


def _version(data: dict[str, Any], color: bool) -> str:
    rows = [
        ("CPython", f"{data['version']} ({data['build']} build, {data['threading']})"),
        ("libpython", data["libpython"] or "linked into the executable"),
        ("executable", data["executable"] or "unknown"),
        ("_PyRuntime", f"{data['runtime_address']:#x}"),
        ("layout", data["layout_source"]),
        ("target", f"{data['target']} ({data['debugger']})"),
        ("pylife", data["pylife"]),
    ]
    return _bold("pylife version", color) + "\n" + key_value_table(rows)


def _bt(data: dict[str, Any], color: bool) -> str:
    from .source import highlight, source_line

    out: list[str] = []
    for thread in data["threads"]:
        name = f' "{escape(thread["name"])}"' if thread.get("name") else ""
        gil = " (holds the GIL)" if thread["holds_gil"] else ""
        python = "" if thread["tstate"] else " (no Python thread state)"
        out.append(_bold(f"Thread {thread['tid']}{name}{gil}{python}", color))
        for number, frame in enumerate(thread["frames"]):
            where = ""
            if frame["file"]:
                where = f" at {escape(frame['file'])}" + (f":{frame['line']}" if frame["line"] else "")
            module = f" [{escape(frame['module'])}]" if frame.get("module") else ""
            marker = "py" if frame["kind"] == "python" else "c "
            function = escape(frame["function"])
            if color and frame["kind"] == "python":
                function = f"\x1b[32m{function}\x1b[0m"
            out.append(f"  #{number:<3} {marker} {function}{where}{module}")
            if frame.get("note") and frame["kind"] == "native":
                out.append(f"         {escape(frame['note'])}")
            if frame["kind"] == "python" and data.get("show_source"):
                text = source_line(frame["file"], frame["line"])
                if text:
                    out.append("         " + (highlight(text) if color else escape(text)))
        for note in thread.get("notes", []):
            out.append(f"  note: {escape(note)}")
        out.append("")
    return "\n".join(out).rstrip("\n")


RENDERERS: dict[str, Callable[[dict[str, Any], bool], str]] = {"info": _info, "version": _version, "bt": _bt}


def render(report: Report, color: bool = False) -> str:
    from . import records

    renderer = RENDERERS.get(report.command) or records.RENDERERS[report.command]
    body = renderer(report.data, color)
    warnings = "".join(f"warning: {escape(w)}\n" for w in report.warnings)
    return warnings + body + "\n"
