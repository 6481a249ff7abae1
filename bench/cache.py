"""Benchmark artefacts kept by a hash of their configuration.

Trained checkpoints and search runs cost minutes to hours on two cores but do not depend on
the machine's load (budgets are optimizer steps), so a second `make bench` reuses them. The
key covers the whole configuration plus a fingerprint of the source that produced the
artefact, so a change to the engine recomputes what it could have changed. Each entry also
records how long it took to compute, which gives the report an honest cold-run time.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT


@lru_cache(maxsize=16)  # one run asks per trained model; the source does not change meanwhile
def source_fingerprint(*folders: str) -> str:
    """Hash of every .py file under `folders` (relative to the repository root)."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(REPO_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class Cache:
    def __init__(self, root: Path, fresh: bool = False) -> None:
        self.root = root
        self.fresh = fresh  # recompute everything (entries are still written)
        self.root.mkdir(parents=True, exist_ok=True)
        self.hits: list[str] = []
        self.misses: list[str] = []
        self.hit_seconds = 0.0  # what the reused entries cost when they were computed

    @staticmethod
    def key(kind: str, config: dict[str, Any]) -> str:
        text = json.dumps({"kind": kind, **config}, sort_keys=True, default=str)
        return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"

    def path(self, kind: str, config: dict[str, Any], suffix: str) -> Path:
        """A file that belongs to one entry (e.g. its checkpoint, `.pt`)."""
        return self.root / (self.key(kind, config) + suffix)

    def _entry(self, kind: str, config: dict[str, Any]) -> Path:
        return self.path(kind, config, ".json")

    def get(self, kind: str, config: dict[str, Any]) -> dict[str, Any] | None:
        entry = self._entry(kind, config)
        if self.fresh or not entry.is_file():
            return None
        return json.loads(entry.read_text())

    def forget(self, kind: str, config: dict[str, Any]) -> None:
        self._entry(kind, config).unlink(missing_ok=True)

    def put(self, kind: str, config: dict[str, Any], value: dict[str, Any],
            seconds: float) -> None:
        entry = self._entry(kind, config)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"config": config, "seconds": seconds, "value": value},
                                  default=str, indent=1))
        tmp.replace(entry)  # atomic: a killed run never leaves half an entry

    def reuse(self, kind: str, config: dict[str, Any]) -> dict[str, Any] | None:
        """The entry (config, seconds, value) if cached, counted as reused for the report."""
        hit = self.get(kind, config)
        if hit is not None:
            self.hits.append(self.key(kind, config))
            self.hit_seconds += float(hit["seconds"])
        return hit

    def store(self, kind: str, config: dict[str, Any], value: dict[str, Any],
              seconds: float) -> None:
        """Write a freshly computed entry, counted as computed for the report."""
        self.put(kind, config, value, seconds)
        self.misses.append(self.key(kind, config))

    def cached(self, kind: str, config: dict[str, Any],
               compute: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], float, bool]:
        """(value, seconds it took to compute, whether it came from the cache)."""
        hit = self.reuse(kind, config)
        if hit is not None:
            return hit["value"], float(hit["seconds"]), True
        start = time.perf_counter()
        value = compute()
        seconds = time.perf_counter() - start
        self.store(kind, config, value, seconds)
        return value, seconds, False
