"""Per-user limits (webapp.studio.limits): each refused with a message naming its setting,
accepted under it; the per-search compute cap; the per-clip limits' messages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from engine.config import TrainBudget
from engine.train.checkpoint import checkpoint_path
from tests.conftest import TINY_CLIP
from tests.webapp.test_search_form import form_data
from webapp.studio import limits
from webapp.studio.forms import SearchForm
from webapp.studio.models import Clip, Preview, Search
from webapp.studio.progress import announce
from webapp.studio.tasks import engine_config

NEW = reverse("studio:search_new")
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def clip(user: User, make_clip: Callable[..., Clip]) -> Clip:
    return make_clip(user)


def weights(search: Search, candidate: str = "trial-1") -> None:
    """A stand-in checkpoint: the start views only check that it exists."""
    path = checkpoint_path(engine_config(search).out_dir, candidate)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")


def test_active_searches_refused_at_the_limit_then_accepted(
        client_in: Client, settings: Settings, clip: Clip, make_search: Callable) -> None:
    settings.STUDIO_MAX_ACTIVE_SEARCHES_PER_USER = 1
    running = make_search(clip)
    response = client_in.post(NEW, form_data(clip))
    assert response.status_code == 429
    text = response.content.decode()
    assert ("You already have 1 search running or queued (the limit, "
            "STUDIO_MAX_ACTIVE_SEARCHES_PER_USER, is 1): wait for one to finish or cancel "
            "it.") in text
    assert Search.objects.count() == 1
    Search.objects.filter(pk=running.pk).update(status=Search.Status.FINISHED)
    response = client_in.post(NEW, form_data(clip))
    assert response.status_code == 302 and Search.objects.count() == 2


def test_resume_counts_as_a_new_search(client_in: Client, settings: Settings, clip: Clip,
                                       make_search: Callable) -> None:
    settings.STUDIO_MAX_ACTIVE_SEARCHES_PER_USER = 1
    make_search(clip)  # queued
    stopped = make_search(clip)
    Search.objects.filter(pk=stopped.pk).update(status=Search.Status.CANCELLED)
    response = client_in.post(reverse("studio:search_resume", args=[stopped.pk]), **JSON)
    assert response.status_code == 429
    assert "STUDIO_MAX_ACTIVE_SEARCHES_PER_USER" in response.json()["error"]
    stopped.refresh_from_db()
    assert stopped.status == Search.Status.CANCELLED
    # Restarting the workers of an active search is no new search: not refused.
    active = Search.objects.filter(status=Search.Status.QUEUED).get()
    response = client_in.post(reverse("studio:search_resume", args=[active.pk]),
                              {"force": "1"}, **JSON)
    assert response.status_code == 200


def test_queued_jobs_refused_at_the_limit(client_in: Client, settings: Settings, clip: Clip,
                                          make_search: Callable) -> None:
    settings.STUDIO_MAX_QUEUED_JOBS_PER_USER = 2
    search = make_search(clip)  # queued: one job waiting
    Search.objects.filter(pk=search.pk).update(status=Search.Status.FINISHED)
    weights(search)
    url = reverse("studio:preview_create", args=[search.pk])
    first = client_in.post(url, {"candidate": "trial-1"})
    assert first.status_code == 302 and Preview.objects.count() == 1  # one waits now
    second = client_in.post(url, {"candidate": "trial-1"}, **JSON)
    assert second.status_code == 302 and Preview.objects.count() == 2
    third = client_in.post(url, {"candidate": "trial-1"}, **JSON)
    assert third.status_code == 429 and Preview.objects.count() == 2
    assert ("You already have 2 jobs waiting for a worker (searches, previews and full "
            "trainings; the limit, STUDIO_MAX_QUEUED_JOBS_PER_USER, is 2)"
            ) in third.json()["error"]
    # A form post lands back on the search's page with the message.
    page = client_in.post(url, {"candidate": "trial-1"}, follow=True)
    assert b"STUDIO_MAX_QUEUED_JOBS_PER_USER" in page.content
    # A search waiting counts too: a new one is refused by the same limit.
    settings.STUDIO_MAX_ACTIVE_SEARCHES_PER_USER = 5
    response = client_in.post(NEW, form_data(clip))
    assert response.status_code == 429 and b"STUDIO_MAX_QUEUED_JOBS_PER_USER" in response.content


def test_full_trainings_refused_at_the_limit_until_one_ends(
        client_in: Client, settings: Settings, clip: Clip, make_search: Callable) -> None:
    settings.STUDIO_MAX_FULL_TRAININGS_PER_USER = 1
    search = make_search(clip)
    Search.objects.filter(pk=search.pk).update(status=Search.Status.FINISHED)
    weights(search, "trial-1")
    weights(search, "trial-2")
    url = reverse("studio:full_train", args=[search.pk])
    first = client_in.post(url, {"candidate": "trial-1", "steps": "200"})
    assert first.status_code == 302
    assert limits.active_full_trainings(search.owner) == {(search.pk, "full-trial-1"): "queued"}
    refused = client_in.post(url, {"candidate": "trial-2", "steps": "200"}, **JSON)
    assert refused.status_code == 429
    assert ("You already have 1 full training running or queued (full-trial-1 of search "
            f"{search.pk}; the limit, STUDIO_MAX_FULL_TRAININGS_PER_USER, is 1)"
            ) in refused.json()["error"]
    announce(search.pk, "full_training_started", {"candidate": "full-trial-1", "steps": 200})
    assert client_in.post(url, {"candidate": "trial-2"}, **JSON).status_code == 429
    announce(search.pk, "full_training_done", {"candidate": "full-trial-1"})
    accepted = client_in.post(url, {"candidate": "trial-2", "steps": "200"})
    assert accepted.status_code == 302
    # A cancel request ends one for the count: a lost worker cannot block its owner.
    client_in.post(reverse("studio:full_train_cancel", args=[search.pk]),
                   {"candidate": "trial-2"})
    assert limits.active_full_trainings(search.owner) == {}


def test_orphaned_full_trainings_end_at_start(user: User, clip: Clip,
                                              make_search: Callable) -> None:
    search = make_search(clip)
    announce(search.pk, "full_training_started", {"candidate": "full-trial-3", "steps": 200})
    limits.end_orphaned_full_trainings("the server stopped")
    assert limits.active_full_trainings(user) == {}
    assert search.events.filter(kind="full_training_cancelled").exists()


def test_storage_counts_the_users_clips_and_search_folders(
        user: User, other_user: User, clip: Clip, make_clip: Callable,
        make_search: Callable) -> None:
    before = limits.storage_used(user)
    assert before == clip.size_bytes + clip.thumbnail.size
    search = make_search(clip)
    folder = limits.search_folder(search.pk) / "previews" / "1"
    folder.mkdir(parents=True)
    (folder / "output.mp4").write_bytes(b"x" * 5000)
    assert limits.storage_used(user) == before + 5000
    make_clip(other_user)  # another user's files are not this user's
    assert limits.storage_used(user) == before + 5000


def test_storage_limit_refuses_uploads_searches_and_full_trainings(
        client_in: Client, settings: Settings, clip: Clip, make_search: Callable,
        studio_dirs: Path) -> None:
    used = limits.storage_used(clip.owner)
    settings.STUDIO_MAX_STORAGE_BYTES_PER_USER = used + TINY_CLIP.stat().st_size + 10
    with TINY_CLIP.open("rb") as f:  # fits: accepted
        assert client_in.post(reverse("studio:clip_upload"), {"file": f}).status_code == 302
    with TINY_CLIP.open("rb") as f:  # would go over: refused, nothing stored
        response = client_in.post(reverse("studio:clip_upload"), {"file": f})
    assert response.status_code == 409 and Clip.objects.count() == 2
    text = response.content.decode()
    assert "STUDIO_MAX_STORAGE_BYTES_PER_USER" in text and "delete clips or searches" in text
    assert "would take your files to" in text
    settings.STUDIO_MAX_STORAGE_BYTES_PER_USER = used  # now full: nothing new starts
    response = client_in.post(NEW, form_data(clip))
    assert response.status_code == 409
    assert b"your whole storage" in response.content and Search.objects.count() == 0
    search = make_search(clip)
    Search.objects.filter(pk=search.pk).update(status=Search.Status.FINISHED)
    weights(search)
    response = client_in.post(reverse("studio:full_train", args=[search.pk]),
                              {"candidate": "trial-1", "steps": "200"}, **JSON)
    assert response.status_code == 409
    assert "STUDIO_MAX_STORAGE_BYTES_PER_USER" in response.json()["error"]


def test_compute_cap_counts_the_plan_and_the_patch_pixels(
        client_in: Client, settings: Settings, clip: Clip) -> None:
    settings.STUDIO_MAX_SEARCH_STEPS = 20_000
    response = client_in.post(NEW, form_data(clip, n_trials=200))
    assert response.status_code == 400 and b"STUDIO_MAX_SEARCH_STEPS" in response.content
    form = SearchForm(form_data(clip, n_trials=4, max_steps=1200), user=clip.owner)
    assert form.is_valid(), form.errors
    assert form.config is not None
    # Four times the patch pixels per step: four times the work under the same cap.
    bigger = form.config.with_changes(budget=TrainBudget(patch_size=64))
    form._check_compute(bigger, 1)
    assert "counted at the default batch of 16 patches of 32x32" in str(form.errors)


def test_clip_limits_name_their_settings(client_in: Client, settings: Settings) -> None:
    settings.STUDIO_MAX_CLIP_SECONDS = 0
    with TINY_CLIP.open("rb") as f:
        response = client_in.post(reverse("studio:clip_upload"), {"file": f})
    assert response.status_code == 400 and b"STUDIO_MAX_CLIP_SECONDS" in response.content
    settings.STUDIO_MAX_CLIP_SECONDS = 120
    settings.STUDIO_MAX_UPLOAD_BYTES = 1024
    with TINY_CLIP.open("rb") as f:
        response = client_in.post(reverse("studio:clip_upload"), {"file": f})
    assert b"STUDIO_MAX_UPLOAD_BYTES" in response.content
