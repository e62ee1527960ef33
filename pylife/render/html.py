"""The batch report as one self-contained HTML page (no network, no script, no external asset).

Every string of the report reaches the page through :func:`escape`, that is
pylife.render.escape.escape_html, the one escaper: HTML metacharacters, C0/C1
controls and Unicode bidi controls (a type name or a file name read from the
target can hold any of them).
The refcount timeline is a hand-written inline SVG step chart: one mark per
recorded event, the free and any use after free drawn to stand out.
"""

from __future__ import annotations

from typing import Any

from ..frame_text import frame_line, frame_site
from ..record.balance import site_of
from .escape import escape_html

CHART_WIDTH = 760
CHART_HEIGHT = 170
MARGIN = 34
MARK_KINDS = {"incref": "▲", "decref": "▼", "zero": "✕", "allocator": "◆", "reuse": "●", "use-after-free": "!",
              "decref-after-free": "!", "negative": "!", "write": "●"}
REFCOUNT_KINDS = frozenset({"incref", "decref", "zero", "negative", "write"})  # the others write a dead block

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;color:#1d1d1f;background:#fff;max-width:1100px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 7px;text-align:left;
vertical-align:top}th{background:#f4f4f6}code,pre{font:12px/1.4 ui-monospace,monospace}
pre{background:#f6f6f8;padding:.6em;overflow-x:auto;white-space:pre-wrap}
.bad{color:#b00020;font-weight:600}.good{color:#1b6e1b}.dim{color:#777}
.object{border:1px solid #ccd;border-radius:6px;padding:.2em 1em 1em;margin:1em 0}
svg{background:#fbfbfd;border:1px solid #e3e3ea}.step{fill:none;stroke:#2a5db0;stroke-width:2}
.mark text{font-size:12px;text-anchor:middle;dominant-baseline:middle}
.incref text{fill:#1b6e1b}.decref text{fill:#2a5db0}.zero text,.uaf text{fill:#b00020;font-size:18px;font-weight:700}
.uaf circle{fill:#ffd6dc;stroke:#b00020;stroke-width:2}.zero circle{fill:#fff0c2;stroke:#b07000;stroke-width:2}
.axis{stroke:#999}.grid{stroke:#e6e6ee}.label{font-size:11px;fill:#555}
details summary{cursor:pointer;color:#2a5db0}
"""


def escape(text: object) -> str:
    """Every piece of report text reaches the page through the one escaper (pylife.render.escape)."""
    return escape_html(str(text))


def escape_lines(text: str) -> str:
    """Multi-line text for a <pre>: each line escaped, the line breaks kept."""
    return "\n".join(escape(line) for line in text.split("\n"))


def _hex(value: object) -> str:
    return f"{value:#x}" if isinstance(value, int) else escape(value if value is not None else "?")


def _site(site: dict[str, Any] | None) -> str:
    if not site:
        return '<span class="dim">none</span>'
    return f"<code>{escape(frame_site(site.get('function'), site.get('file'), site.get('line')))}</code>"


def _row(cells: list[str], header: bool = False) -> str:
    tag = "th" if header else "td"
    return "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    return "<table>" + _row([escape(h) for h in headers], True) + "".join(_row(r) for r in rows) + "</table>"


def chart(item: dict[str, Any]) -> str:
    """Refcount over the event number: a step line, one mark per event."""
    events = item.get("history") or []
    initial = item.get("initial_refcnt")
    start = initial if isinstance(initial, int) else (events[0]["old"] if events else 0)
    # After the free, what lands on ob_refcnt is the allocator's (a free-list link, 0xDD fill): drawn at 0.
    plotted = [e["new"] if e.get("kind") in REFCOUNT_KINDS else 0 for e in events]
    values = [start, *plotted]
    low, high = min([0, *values]), max([1, *values])
    span_y = max(high - low, 1)
    span_x = max(len(events), 1)
    width, height = CHART_WIDTH - 2 * MARGIN, CHART_HEIGHT - 2 * MARGIN

    def x(index: int) -> float:
        return round(MARGIN + width * index / span_x, 1)

    def y(value: int) -> float:
        return round(MARGIN + height * (high - value) / span_y, 1)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" '
             f'viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" role="img" '
             f'aria-label="refcount of {_hex(item.get("address"))} over {len(events)} events">']
    for value in sorted({low, high, 0, start}):
        parts.append(f'<line class="grid" x1="{MARGIN}" x2="{CHART_WIDTH - MARGIN}" y1="{y(value)}" y2="{y(value)}"/>'
                     f'<text class="label" x="{MARGIN - 6}" y="{y(value) + 4}" text-anchor="end">{value}</text>')
    parts.append(f'<line class="axis" x1="{MARGIN}" x2="{CHART_WIDTH - MARGIN}" y1="{y(low)}" y2="{y(low)}"/>')
    path = [f"M{x(0)},{y(start)}"]
    for index, value in enumerate(plotted, 1):
        path.append(f"H{x(index)}V{y(value)}")
    parts.append(f'<path class="step" d="{"".join(path)}"/>')
    for index, (event, value) in enumerate(zip(events, plotted), 1):
        kind = str(event.get("kind"))
        css = "uaf" if kind in ("use-after-free", "decref-after-free", "negative") else kind
        symbol = MARK_KINDS.get(kind, "●")
        ring = f'<circle r="9" cx="{x(index)}" cy="{y(value)}"/>' if css in ("uaf", "zero") else ""
        title = f"event {event.get('seq')}: {kind} {event.get('old')} → {event.get('new')} by {event.get('writer')}"
        parts.append(f'<g class="mark {escape(css)}" data-seq="{escape(event.get("seq"))}">{ring}'
                     f'<text x="{x(index)}" y="{y(value)}">{escape(symbol)}</text>'
                     f"<title>{escape(title)}</title></g>")
    parts.append(f'<text class="label" x="{CHART_WIDTH / 2}" y="{CHART_HEIGHT - 6}" text-anchor="middle">'
                 "event number (▲ incref, ▼ decref, ✕ count reached 0, ! use after free)</text></svg>")
    return "".join(parts)


def _stack(frames: list[dict[str, Any]]) -> str:
    lines = [frame_line(number, frame, module=False) for number, frame in enumerate(frames)]
    return "<pre>" + escape_lines("\n".join(lines) or "(no frames)") + "</pre>"


def events_table(item: dict[str, Any]) -> str:
    rows = []
    for event in item.get("history") or []:
        kind = str(event.get("kind"))
        css = ' class="bad"' if kind in ("use-after-free", "decref-after-free", "negative", "zero") else ""
        stack = event.get("stack") or []
        details = f"<details><summary>{len(stack)} frames</summary>{_stack(stack)}</details>" if stack else ""
        rows.append([escape(event.get("seq")), f"<span{css}>{escape(kind)}</span>",
                     f"{escape(event.get('old'))} → {escape(event.get('new'))}", f"<code>{escape(event.get('writer'))}</code>",
                     escape(event.get("op") or ""), escape(event.get("python") or ""), details])
    if not rows:
        return '<p class="dim">No event was recorded.</p>'
    return _table(["#", "op", "refcount", "writer", "bytecode", "Python line", "stack"], rows)


def _balance(item: dict[str, Any]) -> str:
    balance = item["balance"]
    rows = [[_site(s), escape(s.get("increments")), escape(s.get("decrements")),
             f'<span class="bad">+{escape(s.get("unreleased"))}</span>', escape(s.get("python") or "")]
            for s in balance.get("leak_candidates", [])]
    text = _table(["leak candidate", "increments", "decrements", "unreleased", "Python"], rows) if rows else ""
    over = balance.get("over_decref_candidate")
    if over:
        text += f'<p class="bad">Over-decref candidate: {_site(over)} ({escape(over.get("unreleased"))})</p>'
    notes = "".join(f"<li>{escape(note)}</li>" for note in balance.get("notes", []))
    return text + (f'<ul class="dim">{notes}</ul>' if notes else "")


def object_section(index: int, item: dict[str, Any]) -> str:
    if item["freed"]:
        state = f'freed by {_site(item.get("free_site"))}'
    elif item["leaked"]:
        state = f'<span class="bad">LEAKED</span>: still alive at exit, refcount {escape(item.get("final_refcnt"))}'
    else:
        state = f"alive, refcount {escape(item.get('final_refcnt'))}"
    uaf = item.get("uses_after_free") or []
    if uaf:
        state += f' — <span class="bad">USE AFTER FREE at event {escape(uaf[0])}</span>'
    allocated = item.get("allocated")
    alloc = ""
    if allocated:
        function, file, line, _chain, _in_core = site_of(allocated)  # the first frame outside the interpreter
        alloc = f"<details><summary>allocated by {escape(frame_site(function, file, line))}</summary>{_stack(allocated)}</details>"
    return (f'<section class="object" id="object-{index}"><h3>{_hex(item["address"])} '
            f"<code>{escape(item['type'])}</code></h3><p>{escape(item['events'])} events; {state}</p>{alloc}"
            f"{chart(item)}<h4>Balance</h4>{_balance(item)}<h4>Events</h4>{events_table(item)}</section>")


def crash_section(crash: dict[str, Any]) -> str:
    parts = [f"<h2>Crash: {escape(crash.get('kind'))}</h2><pre>{escape_lines(str(crash.get('summary') or ''))}</pre>"]
    victim = crash.get("victim")
    if victim:
        parts.append(f'<p class="bad">Victim: {_hex(victim["address"])} <code>{escape(victim["type"])}</code>, '
                     f'freed by {_site(victim.get("free_site"))}; over-decref candidate '
                     f'{_site(victim.get("over_decref_candidate"))} (<a href="#object-{escape(victim.get("object"))}">'
                     "its history</a>)</p>")
    elif crash.get("rerun"):
        parts.append(f"<p>The victim's history was not recorded. Name it with:</p><pre>{escape(crash['rerun'])}</pre>")
    rows = [[_hex(o.get("address")), escape(o.get("verdict")), f"<code>{escape(o.get('type') or '?')}</code>",
             escape(o.get("source")), escape("; ".join(o.get("reasons") or []))] for o in crash.get("objects", [])]
    if rows:
        parts.append(_table(["object", "verdict", "type", "found in", "why"], rows))
    if crash.get("stack"):
        parts.append(f"<details><summary>crashing thread's stack</summary>{_stack(crash['stack'])}</details>")
    return "".join(parts)


def page(report: dict[str, Any]) -> str:
    exit_ = report.get("exit") or {}
    status = (f"exit code {escape(exit_.get('code'))}" if exit_.get("code") is not None
              else f"signal {escape(exit_.get('signal'))}")
    environment = report.get("environment") or {}
    facts = [["program", f"<code>{escape(' '.join(report.get('program') or []))}</code>"],
             ["debugger", escape(report.get("debugger"))], ["Python", escape(report.get("python"))],
             ["exit", status + (f" ({escape(report['interrupted'])})" if report.get("interrupted") else "")],
             ["environment", escape(", ".join(f"{k}={v}" for k, v in (environment.get("variables") or {}).items()))
              + (" (ASLR off)" if environment else "")],
             ["history log", f"<code>{escape(report.get('log'))}</code>"]]
    if report.get("core"):
        facts.insert(0, ["core", f"<code>{escape(report['core'])}</code>"])
    findings = report.get("findings") or {}
    summary = (f"{len(report.get('objects', []))} objects watched; {escape(findings.get('leaks', 0))} leaked; "
               f"{escape(findings.get('uses_after_free', 0))} uses after free")
    body = [f"<h1>pylife {escape(report.get('kind'))} report</h1>", _table(["", ""], facts), f"<p>{summary}</p>"]
    if report.get("failures"):
        body.append('<h2>Failed steps</h2><ul class="bad">'
                    + "".join(f"<li>{escape(f)}</li>" for f in report["failures"]) + "</ul>")
    if report.get("crash"):
        body.append(crash_section(report["crash"]))
    if report.get("objects"):
        body.append("<h2>Watched objects</h2>")
        body += [object_section(i, item) for i, item in enumerate(report["objects"])]
    return _document(f"pylife report: {' '.join(report.get('program') or [report.get('core') or ''])}", body)


def triage_page(report: dict[str, Any]) -> str:
    rows = [[escape(g["count"]), escape(g["kind"]), f"<code>{escape(' < '.join(g['frames']) or '-')}</code>",
             f"<code>{escape(g.get('victim_type') or '-')}</code>", f"<code>{escape(g.get('example'))}</code>",
             f"<details><summary>{len(g['cores'])} cores</summary><pre>{escape_lines(chr(10).join(map(str, g['cores'])))}"
             "</pre></details>"] for g in report["groups"]]
    body = [f"<h1>pylife triage: {escape(report['cores'])} cores, {len(report['groups'])} groups</h1>",
            _table(["count", "kind", "top frames", "victim type", "example core", "cores"], rows)]
    return _document("pylife triage", body)


def _document(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")
