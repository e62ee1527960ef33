"""What `pylife run` / `core` / `triage` print at the end: a few lines on stderr, a table for triage."""

from __future__ import annotations

from typing import Any

from ..frame_text import frame_site
from ..render.text import escape, table


def _site(site: dict[str, Any] | None) -> str:
    if not site:
        return "?"
    return escape(frame_site(site.get("function"), site.get("file"), site.get("line")))


def text(report: dict[str, Any]) -> str:
    lines = []
    exit_ = report["exit"]
    if report["kind"] == "run":
        if exit_["code"] is not None:
            status = f"exit code {exit_['code']}"
        elif exit_["signal"] is not None:
            status = f"signal {exit_['signal']}"
        elif report.get("stopped_by_pylife"):
            status = "stopped by --stop-on (the program was killed there)"
        else:
            status = "did not finish"
        lines.append(f"{escape(' '.join(report['program'] or []))}: {status}"
                     + (f" ({report['interrupted']})" if report.get("interrupted") else ""))
    crash = report.get("crash")
    if crash:
        lines += [escape(line) for line in str(crash.get("summary") or crash.get("kind")).splitlines()]
        victim = crash.get("victim")
        if victim:
            over = victim.get("over_decref_candidate")
            lines.append(f"victim {victim['address']:#x} ({escape(victim['type'])}): freed by {_site(victim['free_site'])}"
                         + (f"; over-decref candidate {_site(over)}" if over else ""))
        if crash.get("rerun"):
            lines.append(f"name the victim with: {escape(crash['rerun'])}")
    for item in report["objects"]:
        state = ("freed" if item["freed"] else "LEAKED" if item["leaked"]
                 else "not an object at this address (its data, not a count)" if item.get("foreign") else "alive")
        line = f"{item['address']:#x} {escape(item['type'])}: {item['events']} events, {state}"
        if item["freed"]:
            line += f" by {_site(item['free_site'])}"
        elif item["final_refcnt"] is not None:
            line += f", refcount {item['final_refcnt']}"
        leaks = item["balance"]["leak_candidates"]
        if item["leaked"] and leaks:
            line += f"; leak candidate {_site(leaks[0])} +{leaks[0]['unreleased']}"
        if item["uses_after_free"]:
            line += f"; USE AFTER FREE at event {item['uses_after_free'][0]}"
        lines.append(line)
    if report["kind"] == "run" and not report["objects"]:
        lines.append("no object was watched")
    lines += [f"failed: {escape(f)}" for f in report["failures"]]
    return "\n".join(lines)


def triage_table(report: dict[str, Any]) -> str:
    rows = [[g["count"], g["kind"], " < ".join(g["frames"]) or "-", g["victim_type"] or "-", g["example"]]
            for g in report["groups"]]
    head = f"{report['cores']} cores, {len(report['groups'])} groups"
    return head + "\n" + table(["count", "kind", "top frames", "victim type", "example core"], rows)
