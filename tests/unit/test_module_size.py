"""House rule: modules of 500 lines or fewer under pylife/, generated tables (*_generated.py) aside."""

from __future__ import annotations

from pathlib import Path

import pylife

ROOT = Path(pylife.__file__).resolve().parent
MAX_LINES = 500


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_modules_are_at_most_500_lines() -> None:
    modules = [p for p in sorted(ROOT.rglob("*.py")) if not p.name.endswith("_generated.py")]
    assert len(modules) >= 60, modules
    assert any(p.relative_to(ROOT).parts[0] == "dbg" for p in modules)  # the adapters count too
    over = {str(p.relative_to(ROOT)): _lines(p) for p in modules if _lines(p) > MAX_LINES}
    assert over == {}, f"split these modules (at most {MAX_LINES} lines): {over}"


def test_only_generated_tables_are_exempt() -> None:
    """Guard the guard: the exemption is by name, and a generated table is long (so the check can tell)."""
    generated = sorted(ROOT.rglob("*_generated.py"))
    assert generated and max(_lines(p) for p in generated) > MAX_LINES
