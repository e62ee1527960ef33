"""The HTML report of a real crash run, opened in real headless chromium (Debian's package, scripts/setup.sh).

It must render with no network (the page has no script and its CSP forbids any), hold one SVG per watched
object with one mark per recorded event, and leave a screenshot for people
to look at (in the test's temporary directory).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .test_batch import CRASH_AT, Runs, runs  # noqa: F401 - the session fixture

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    program = shutil.which("chromium")
    if program is None:
        pytest.skip("chromium is not installed (scripts/setup.sh installs Debian's chromium)")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"  # a fresh profile per call
    return subprocess.run([program, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("debugger", ["gdb", "lldb"])
def test_the_crash_report_renders_in_chromium(runs: Runs, tmp_path: Path, debugger: str) -> None:  # noqa: F811
    outcome = runs.scenario(debugger, "3.12", "over_decref_crash", CRASH_AT, malloc_debug=True)
    report = outcome["report"]
    assert report is not None, outcome["stderr"][-2000:]
    page = Path(outcome["workdir"]) / "report.html"
    assert page.exists(), outcome["stderr"][-2000:]
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout
    assert "<h1>pylife run report</h1>" in text
    assert text.count("<svg") == len(report["objects"]) >= 1
    marks = re.findall(r'<g class="mark ([\w-]+)" data-seq="(\d+)">', text)
    expected = [e["seq"] for o in report["objects"] for e in o["history"]]
    assert [int(seq) for _, seq in marks] == expected and expected
    assert "zero" in [kind for kind, _ in marks]  # the free stands out
    assert "Victim: " in text and "buggy_over_decref_crash" in text
    shot = tmp_path / f"report-{debugger}.png"
    done = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1800", page.as_uri())
    assert done.returncode == 0 and shot.exists() and shot.stat().st_size > 10_000, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
