"""Benchmark target: N tracked objects in the oldest generation, then a stop.

    python gc_heap_target.py N OUT.json

Writes the addresses of an object in the middle of generation 2 and of the
oldest one, then SIGTRAPs itself (the debugger takes over).
"""

import gc
import json
import os
import signal
import sys

count = int(sys.argv[1])
keep = [[i] for i in range(count)]
gc.collect()
gc.collect()
json.dump({"middle": id(keep[count // 2]), "oldest": id(keep[0]), "count": count}, open(sys.argv[2], "w"))
os.kill(os.getpid(), signal.SIGTRAP)
