"""The disk full while a clip is uploaded, a checkpoint is written by a search worker and a
preview is rendered (issue 10, part 8): MEDIA_ROOT on a small tmpfs (CI runs as root), filled
up. Each gets the clear message ('the server is out of disk space', what to do), never a
server path or a command line, and leaves no temporary file, no half file, no row or folder
of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from engine.config import Rungs, SearchConfig, TrainBudget
from engine.nets.builder import build_network
from engine.nets.genome import Genome
from engine.safe_files import DISK_FULL_MESSAGE
from engine.search import lifecycle
from engine.train.checkpoint import checkpoint_path, save_checkpoint
from tests.conftest import TINY_CLIP
from tests.small_disk import fill, leftovers, small_disk
from webapp.studio.models import Clip, Preview, Search
from webapp.studio.previews import render_preview_task
from webapp.studio.progress import StudioSink
from webapp.studio.tasks import engine_config, search_worker
from webapp.studio.uploads import create_clip, file_chunks

pytestmark = pytest.mark.django_db


@pytest.fixture
def disk(settings: Settings, tmp_path: Path) -> Iterator[Path]:
    """MEDIA_ROOT on a 2 MB tmpfs (the frame cache and the Optuna study stay elsewhere)."""
    with small_disk(tmp_path / "small-disk") as mounted:
        settings.MEDIA_ROOT = mounted
        settings.STUDIO_CACHE_DIR = tmp_path / "frame-cache"
        settings.STUDIO_OPTUNA_STORAGE = f"sqlite:///{tmp_path / 'optuna.sqlite3'}"
        yield mounted


@pytest.fixture
def user() -> User:
    return User.objects.create_user("alice", password="a-long-test-password")


@pytest.fixture
def client_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def make_search(owner: User, **config: object) -> Search:
    """A search of the tiny clip, stored (while there is room) through the upload path."""
    clip = create_clip(owner, file_chunks(TINY_CLIP), "city_tiny.mp4")
    cfg = SearchConfig(clip=clip.file.name, **{"n_trials": 1, **config})  # type: ignore[arg-type]
    return Search.objects.create(owner=owner, clip=clip, config=cfg.to_dict())


def assert_clear(text: str, disk: Path) -> None:
    assert DISK_FULL_MESSAGE in text
    assert "free space or ask the administrator" in text
    assert str(disk) not in text and "small-disk" not in text and "COMMAND" not in text


def test_an_upload_larger_than_the_free_space_gets_507_and_leaves_nothing(
        client_in: Client, disk: Path) -> None:
    fill(disk, free=16 * 1024)  # the clip is 70 KB
    response = client_in.post(reverse("studio:clip_upload"), {
        "file": SimpleUploadedFile("city.mp4", TINY_CLIP.read_bytes(), "video/mp4")})
    assert response.status_code == 507
    assert_clear(response.content.decode(), disk)
    assert Clip.objects.count() == 0
    assert [p for p in leftovers(disk) if (disk / p).is_file()] == []


def test_a_search_whose_checkpoint_write_fills_the_disk_fails_with_the_message(
        user: User, disk: Path, settings: Settings) -> None:
    search = make_search(user, resolution=(320, 180), strategy="random",
                         budget=TrainBudget(batch_size=4, patch_size=16),
                         rungs=Rungs(min_steps=20, max_steps=40, eta=2),
                         prototype_reference=False)
    lifecycle.prepare(engine_config(search), StudioSink(search.pk), settings.STUDIO_CACHE_DIR)
    Search.objects.filter(pk=search.pk).update(status=Search.Status.RUNNING)
    before = leftovers(disk)
    fill(disk, free=0)
    search_worker(search.pk)  # what the Celery worker runs
    search.refresh_from_db()
    assert search.status == Search.Status.FAILED
    assert search.error == DISK_FULL_MESSAGE  # not "internal error: unexpected pos …"
    after = leftovers(disk)
    assert not [p for p in after if ".tmp" in p]  # no trial-1.tmp… of a torch.save
    assert not [p for p in after if p.endswith(".pt") and p not in before]
    assert search.events.filter(kind="search_failed").exists()


def test_a_preview_on_a_full_disk_fails_with_the_message_and_no_folder(
        client_in: Client, user: User, disk: Path) -> None:
    search = make_search(user)
    save_checkpoint(checkpoint_path(engine_config(search).out_dir, "trial-1"),
                    build_network(Genome.uniform(8, 1), 2), 2, {"trial": 1})
    preview = Preview.objects.create(search=search, candidate="trial-1")
    fill(disk, free=64 * 1024)  # room for a few frames, not for the three videos
    render_preview_task(preview.pk)  # what the interactive worker runs
    preview.refresh_from_db()
    assert preview.status == Preview.Status.FAILED
    assert preview.error == DISK_FULL_MESSAGE
    assert not preview.folder.exists() and not preview.folder.parent.exists()
    assert not [p for p in leftovers(disk) if ".tmp" in p]
    page = client_in.get(reverse("studio:preview_detail", args=[preview.pk]))
    assert_clear(page.content.decode(), disk)
