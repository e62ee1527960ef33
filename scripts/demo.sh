#!/usr/bin/env bash
# Set up (if needed) and run the pylife demo under gdb: a C extension over-decrefs an object
# a list still holds and then uses it; pylife watches the object, records its refcount
# history, traps the use after free and names the culprit.
#   scripts/demo.sh [X.Y]     target interpreter (default 3.12, any installed 3.8-3.13)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
minor=${1:-3.12}
python=$(ls -d "$(pyenv root 2>/dev/null || echo ~/.pyenv)"/versions/"$minor".*/bin/python"$minor" 2>/dev/null | sort -V | tail -1 || true)
[ -x "$python" ] || { echo "demo: no CPython $minor under pyenv" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/pylife-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
ext=$(.venv/bin/python tests/fixtures/buggy/build.py "$python" "$work/build")
export PYLIFE_SCENARIO_OUT=$work/scenario.jsonl PYLIFE_LOG_DIR=$work
echo "demo: gdb --args $python tests/fixtures/buggy/scenarios.py over_decref --stop"
PYTHONPATH=$ext gdb -nx -q -batch -ex "source $PWD/gdb_pylife.py" -ex run -ex "source $PWD/examples/demo_gdb.py" \
    --args "$python" tests/fixtures/buggy/scenarios.py over_decref --stop 2>&1 \
    | grep -v -e '^\[Thread debugging' -e '^Using host libthread_db' -e 'auto-load' -e 'add-auto-load' -e '^To enable execution' \
              -e '^line to your configuration' -e '^To completely disable' -e '^For more information about this' \
              -e 'Auto-loading safe path' -e 'info "(gdb)' -e '^$'

# The same kind of bug, unattended: `pylife run` traces it to the crash and writes JSON and HTML reports.
report=${PYLIFE_DEMO_REPORT:-${TMPDIR:-/tmp}/pylife-demo-report}
echo
echo "demo: PYTHONMALLOC=debug pylife run --watch-type Victim --json $report.json --html $report.html -- $python tests/fixtures/buggy/scenarios.py over_decref_crash"
status=0
PYTHONMALLOC=debug PYTHONPATH=$ext PYLIFE_SCENARIO_OUT= .venv/bin/pylife run --watch-type Victim \
    --json "$report.json" --html "$report.html" -- "$python" tests/fixtures/buggy/scenarios.py over_decref_crash || status=$?
echo "demo: pylife run exited with $status (the program's own SIGSEGV/SIGBUS: 128+N); open $report.html"
