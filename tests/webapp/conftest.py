"""Shared fixtures of the web tests: media and frame cache in tmp, users, real clips."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.fixtures import Settings

from engine.config import SearchConfig
from tests.conftest import TINY_CLIP
from webapp.studio.models import Clip, Search
from webapp.studio.uploads import create_clip, file_chunks

PASSWORD = "a-long-test-password"


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    """The sign-in throttle counts in the cache: no test inherits another's failures."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def studio_dirs(settings: Settings, tmp_path: Path) -> Path:
    """Every web test writes media and cached frames under its own tmp folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STUDIO_CACHE_DIR = tmp_path / "frame-cache"
    settings.STUDIO_OPTUNA_STORAGE = f"sqlite:///{tmp_path / 'optuna.sqlite3'}"
    return settings.MEDIA_ROOT


def media_files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


@pytest.fixture
def user(db: None) -> User:
    return User.objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def other_user(db: None) -> User:
    return User.objects.create_user("mallory", password=PASSWORD)


@pytest.fixture
def client_in(client: Client, user: User) -> Client:
    """The test client, signed in as `user`."""
    client.force_login(user)
    return client


@pytest.fixture
def make_clip() -> Callable[[User], Clip]:
    """A real clip (city_tiny.mp4) stored for `owner` through the upload path."""
    def make(owner: User, name: str = "city_tiny.mp4") -> Clip:
        return create_clip(owner, file_chunks(TINY_CLIP), name)
    return make


@pytest.fixture
def make_search() -> Callable[[Clip], Search]:
    def make(clip: Clip, **config: object) -> Search:
        config = {"n_trials": 3, **config}
        cfg = SearchConfig(clip=clip.file.name, **config)  # type: ignore[arg-type]
        return Search.objects.create(owner=clip.owner, clip=clip, config=cfg.to_dict())
    return make
