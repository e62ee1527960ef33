"""Batch use of pylife: `pylife run|core|triage` (the console script, or `python -m pylife`)."""
