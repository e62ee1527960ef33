"""Refcount recording: watch events, histories, the JSONL log and balance analysis."""
