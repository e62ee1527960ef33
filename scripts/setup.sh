#!/usr/bin/env bash
# Install what pylife needs on a fresh Debian 12 machine; quick and silent when all is there.
#   apt: gdb, lldb-16, python3-lldb-16 (Debian's lldb 14 ships a broken Python module)
#        python3.11-dbg (a Py_DEBUG CPython, python3.11d, for the debug-build tests)
#        chromium (headless: the batch HTML report is checked in a real browser)
#   venv: .venv with pylife (editable) and its runtime + dev dependencies
#   sid root: Debian sid with python3.14/3.15 (+ -dbg), gdb 18, lldb-21 (scripts/make_sid_root.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

need_apt=()
command -v gdb >/dev/null 2>&1 || need_apt+=(gdb)
command -v lldb-16 >/dev/null 2>&1 || need_apt+=(lldb-16)
[ -d /usr/lib/llvm-16/lib/python3/dist-packages/lldb ] || need_apt+=(python3-lldb-16)
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
[ -x /usr/bin/python3.11d ] || need_apt+=(python3.11-dbg)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing ${need_apt[*]} with apt-get"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The venv's Python must share its minor version with the debuggers' embedded
# Python (Debian's 3.11) so that they can import pygments/tabulate from it.
PYTHON=${PYLIFE_PYTHON:-}
if [ -z "$PYTHON" ]; then
    for candidate in "$(command -v pyenv >/dev/null 2>&1 && pyenv root)/versions/3.11."*/bin/python3.11 /usr/bin/python3.11 python3; do
        if [ -x "$candidate" ] || command -v "$candidate" >/dev/null 2>&1; then
            if "$candidate" -c 'import venv, ensurepip' >/dev/null 2>&1; then PYTHON=$candidate; break; fi
        fi
    done
fi
stamp=.venv/.pylife-setup
want="$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: creating .venv with $PYTHON"
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
    echo "$want" > "$stamp"
fi
# The Debian sid root with CPython 3.14/3.15, gdb 18 and lldb-21 (scripts/make_sid_root.sh):
# a few minutes the first time, cached outside the checkout; PYLIFE_SID_ROOT=none skips it.
if [ "${PYLIFE_SID_ROOT:-}" != "none" ]; then
    bash scripts/make_sid_root.sh
fi
echo "setup: ok ($(gdb --version | head -1); $(lldb-16 --version | head -1); venv $(.venv/bin/python --version))"
