"""Shared fixtures: paths of the real test data and small search configs."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
TINY_CLIP = DATA / "video" / "city_tiny.mp4"


def pytest_configure(config: pytest.Config) -> None:
    # Real data is part of the test contract (CI lays it out too): fail loudly, never skip.
    if not TINY_CLIP.exists():
        raise pytest.UsageError(f"test data missing: expected {TINY_CLIP} (../shared/data)")


@pytest.fixture
def tiny_clip() -> Path:
    return TINY_CLIP


@pytest.fixture
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "frame-cache"
