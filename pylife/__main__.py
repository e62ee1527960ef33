"""`python -m pylife run|core|triage ...`: the batch driver (also the `pylife` console script)."""

from __future__ import annotations

import sys

from pylife.batch.cli import main

if __name__ == "__main__":
    sys.exit(main())
