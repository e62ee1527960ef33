"""Plain-text rendering of reports, with tabulate when it is installed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..frame_text import frame_at, frame_line
from ..report import Report
from . import records
from .escape import escape, shown
from .tables import key_value_table, table

__all__ = ["escape", "key_value_table", "render", "table"]  # table helpers re-exported for older imports


def _bold(text: str, color: bool) -> str:
    return f"\x1b[1m{text}\x1b[0m" if color else text


def _green(text: str) -> str:
    return f"\x1b[32m{text}\x1b[0m"


def _plain(text: str) -> str:
    return text


def _allocator_text(facts: dict[str, Any]) -> str:
    """One line about the allocator and the block, from the `allocator` facts of a verdict."""
    if not facts:
        return "unknown"
    parts = [str(facts.get("label") or facts.get("name") or "unknown allocator")]
    region = facts.get("region")
    if region == "static":
        parts.append(f"static data ({facts.get('section')})")
    if facts.get("pool") is not None:
        arena = f", arena {facts['arena']:#x}" if facts.get("arena") is not None else ""
        parts.append(f"pool {facts['pool']:#x}{arena}, size class {facts.get('size_class')}, "
                     f"block {facts.get('block', 0):#x} {facts.get('block_state')}")
    if facts.get("debug_header") is not None:
        pads = "ok" if facts.get("debug_pads_ok") else "damaged"
        size = facts.get("debug_requested_size")
        parts.append(f"debug header API '{facts.get('debug_api')}', pads {pads}"
                     + (f", {size} bytes requested" if size is not None else ""))
    if facts.get("chunk") is not None:
        state = {True: "in use", False: "free", None: "state unknown"}[facts.get("chunk_in_use")]
        mmapped = ", mmap'd" if facts.get("chunk_mmapped") else ""
        parts.append(f"glibc chunk {facts['chunk']:#x}, {facts.get('chunk_size')} bytes, {state}{mmapped}")
    if facts.get("ob_ref_local") is not None:  # free-threaded header (free_threaded.Header.facts)
        bits = ",".join(facts.get("ob_gc_bits") or []) or "none"
        parts.append(f"ob_tid {facts.get('ob_tid', 0):#x}, ob_ref_local {facts['ob_ref_local']}, "
                     f"ob_ref_shared {facts.get('ob_ref_shared', 0):#x} ({facts.get('shared_flag')}), "
                     f"ob_gc_bits {bits}")
    if facts.get("new_object") is not None:
        parts.append(f"now holds a {shown(str(facts.get('new_type')))} at {facts['new_object']:#x}")
    if facts.get("object") is not None:
        parts.append(f"inside the live {shown(str(facts.get('object_type')))} at {facts['object']:#x}")
    return "; ".join(parts)


def _verdict_rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    if "verdict" not in data:
        return []
    rows = [("verdict", data["verdict"])]
    rows += [("because", reason) for reason in data.get("reasons", [])]
    if data.get("stale_type"):
        rows.append(("stale type", shown(data["stale_type"])))
    rows.append(("allocator", _allocator_text(data.get("allocator") or {})))
    return rows


def _info(data: dict[str, Any], color: bool) -> str:
    if "error" in data:  # not readable as an object, but the allocator says what it is
        head = _bold(f"No live PyObject at {data['address']:#x}", color)
        return head + "\n" + key_value_table([("problem", data["error"]), *_verdict_rows(data)])
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
        ("type", f"{shown(data['type'])} ({data['type_address']:#x})"),
        ("refcnt", refcnt),
        ("size", "unknown" if data["size"] is None else f"{data['size']} bytes"),
        ("gc", gc_text),
        ("preview", data["preview"]),
    ]
    rows += _verdict_rows(data)
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
    symbols = data.get("symbols")
    if symbols:
        rows.insert(5, ("symbols", symbols["summary"]))
        rows[6:6] = [("  degraded", line) for line in symbols["degraded"]]
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
            style = _green if color and frame["kind"] == "python" else _plain
            out.append("  " + frame_line(number, frame, escape, style))
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


def _frame(data: dict[str, Any], color: bool) -> str:
    from .source import highlight, source_line

    state = "selected" if data["selected"] else "default"
    out = [_bold(f"Python frame #{data['frame']} of thread {data['tid']} ({state}; {data['frames']} frames)", color),
           f"  {frame_at(escape(data['function']), data['file'], data['line'], escape)}"]
    text = source_line(data["file"], data["line"])
    if text:
        out.append("    " + (highlight(text) if color else escape(text)))
    if data["locals"]:
        out.append("  locals: " + ", ".join(escape(name) for name in data["locals"]))
    out += [f"  note: {escape(note)}" for note in data["notes"]]
    return "\n".join(out)


def _pymalloc(data: dict[str, Any], color: bool) -> str:
    pools = data["pools"]
    head = _bold(f"pymalloc ({data['allocator']['label']})", color)
    summary = key_value_table([
        ("arenas", f"{data['arenas']} of {data['arena_size'] >> 10} KiB ({data['arena_objects']} arena objects)"),
        ("pools", f"{pools['total']} of {data['pool_size'] >> 10} KiB: {pools['used']} used, {pools['empty']} empty, "
                  f"{pools['untouched']} never used"),
        ("blocks", f"{data['blocks_used']} in use, {data['bytes_used']} bytes"),
    ])
    rows = [[c["size"], c["pools"], c["blocks_used"], c["blocks_free"], c["bytes_used"]] for c in data["classes"]]
    out = [head, summary, "", table(["size", "pools", "blocks in use", "avail blocks", "bytes in use"], rows)]
    out += [f"note: {escape(note)}" for note in data["notes"]]
    return "\n".join(out)


def _alloc_site(data: dict[str, Any], color: bool) -> str:
    what = f"{shown(data['type'])} at {data['address']:#x}" if data.get("type") else f"{data['address']:#x}"
    if not data["traced"]:
        return _bold(f"No allocation trace for {what}", color) + "".join(f"\n  {escape(n)}" for n in data["notes"])
    head = _bold(f"{what} was allocated ({data['size']} bytes at {data['allocation']:#x}), most recent call last:", color)
    lines = [head]
    lines += [f'  File "{escape(frame["file"])}", line {frame["line"]}' for frame in data["frames"]]
    total = data.get("total_frames")
    if total is not None and total > len(data["frames"]):
        lines.append(f"  ({total - len(data['frames'])} older frames not recorded: tracemalloc keeps {data['max_frames']})")
    return "\n".join(lines)


def _diagnose(data: dict[str, Any], color: bool) -> str:
    out = [_bold(f"pylife diagnose: {data['kind']}", color)]
    out += [escape(line) for line in data["summary"].splitlines()]
    for obj in data["objects"]:
        erased = (data.get("victim") or {}).get("type_erased") and obj["address"] == data["victim"]["address"]
        kind = f" ({shown(obj['type'])})" if obj.get("type") else (" (type erased)" if erased else "")
        out.append(f"  {obj['address']:#x}{escape(kind)} {obj['verdict']}: {escape(obj['source'])}")
        out += [f"      {escape(reason)}" for reason in obj["reasons"]]
    if data["stack"]:
        out.append("stack:")
        out += ["  " + frame_line(number, frame, escape, module=False) for number, frame in enumerate(data["stack"])]
    out += [f"note: {escape(note)}" for note in data["notes"]]
    return "\n".join(out)


RENDERERS: dict[str, Callable[[dict[str, Any], bool], str]] = {
    "info": _info, "version": _version, "bt": _bt, "frame": _frame, "pymalloc": _pymalloc, "alloc-site": _alloc_site,
    "diagnose": _diagnose,
}


def render(report: Report, color: bool = False) -> str:
    renderer = RENDERERS.get(report.command) or records.RENDERERS[report.command]
    body = renderer(report.data, color)
    warnings = "".join(f"warning: {escape(w)}\n" for w in report.warnings)
    return warnings + body + "\n"
