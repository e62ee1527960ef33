"""Run inside gdb after examples/app.py stopped: show pylife on its objects."""

import json
import os

import gdb  # type: ignore[import-not-found]

path = os.environ.get("PYLIFE_DEMO_ADDRS", "/tmp/pylife-demo-addrs.json")
with open(path) as source:
    addresses = json.load(source)
for command in ["pylife version"] + [f"pylife info {addresses[name]:#x}" for name in ("cache", "first_order", "fresh", "none")]:
    gdb.write(f"\n(gdb) {command}\n")
    gdb.execute(command)
