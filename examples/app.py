"""A small program for the pylife demo: builds a few objects, then stops itself.

It writes the addresses of its objects to the file named by PYLIFE_DEMO_ADDRS
(so the demo can show `pylife info` on them) and raises SIGTRAP, which hands
control to the debugger it runs under.
"""

import gc
import json
import os
import signal


class Order:
    def __init__(self, item: str, quantity: int) -> None:
        self.item = item
        self.quantity = quantity


orders = [Order("tea", 2), Order("cake", 1)]
cache = {"orders": orders, "total": 3, "currency": "\u20ac", "tags": frozenset({"new", "paid"})}
gc.collect()  # cache and orders move to the oldest generation
fresh = [n * n for n in range(5)]  # made after the collection: generation 0

addresses = {"cache": id(cache), "first_order": id(orders[0]), "fresh": id(fresh), "none": id(None)}
with open(os.environ.get("PYLIFE_DEMO_ADDRS", "/tmp/pylife-demo-addrs.json"), "w") as out:
    json.dump(addresses, out)
print("app: objects ready, stopping for the debugger", flush=True)
os.kill(os.getpid(), signal.SIGTRAP)
print("app: resumed and finished")
