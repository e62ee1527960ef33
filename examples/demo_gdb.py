"""The pylife demo, run inside gdb once the scenario stopped itself (SIGTRAP).

The story: a C extension (tests/fixtures/buggy) drops one reference too many
on an object a list still holds, then uses it again. pylife watches the
victim's refcount while the program runs, records every change with its
merged C + Python stack, traps the use after free, and names the culprit.
"""

import json
import os

import gdb  # type: ignore[import-not-found]


def show(command: str) -> None:
    gdb.write(f"\n(gdb) {command}\n")
    try:
        gdb.execute(command)
    except gdb.error as exc:  # e.g. the program stopped on the trap: print and go on
        gdb.write(f"{exc}\n")


with open(os.environ["PYLIFE_SCENARIO_OUT"]) as source:
    victim = json.loads(source.readline())["victim"]
show("pylife version")
show(f"pylife info {victim:#x}")
show(f"pylife watch {victim:#x}")
show("continue")
show("pylife bt --limit 8")
show(f"pylife info {victim:#x}")
show("pylife history")
show("pylife history --balance")
show("pylife history --full 2")
