"""What CPython memory means: layouts per version, objects, GC, threads."""
