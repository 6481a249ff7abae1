"""Moved to the top-level studio_harness package (shared with bench/). Only this re-export
remains, for tests/browser/conftest.py, which still imports `redis_answers` from here: delete
this file once it imports studio_harness.processes."""

from __future__ import annotations

from studio_harness.processes import redis_answers

__all__ = ["redis_answers"]
