"""`make bench`: the project's benchmarks, measured side by side in one run (see common.py)."""
