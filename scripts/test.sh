#!/usr/bin/env bash
# Set up (if needed) and run the whole pylife test suite: lint, unit, and real gdb/lldb integration tests.
#   scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check pylife gdb_pylife.py lldb_pylife.py scripts tests benchmarks examples
.venv/bin/mypy  # pylife/, configured in pyproject.toml
exec .venv/bin/pytest -n 2 -p no:cacheprovider "$@"
