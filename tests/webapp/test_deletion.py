"""Deleting clips and searches (webapp.studio.deletion): the confirmation page says what goes,
the POST removes rows, files, the Optuna study and unshared cache entries; only the owner can;
a running search is stopped, and its worker leaves nothing behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from webapp.studio.deletion import purge_if_deleted
from webapp.studio.full_training import full_train_task
from webapp.studio.limits import search_folder
from webapp.studio.models import Clip, Preview, Search, SearchEvent, Trial
from webapp.studio.previews import render_preview_task
from webapp.studio.progress import announce
from webapp.studio.tasks import _cancel_requested, engine_config, launch_search, search_worker


def study_names() -> list[str]:
    return optuna.get_all_study_names(storage=settings.STUDIO_OPTUNA_STORAGE)


def filled(search: Search) -> Search:
    """A search with what a run leaves: rows, events, a preview, files and its study."""
    Trial.objects.create(search=search, number=1, state="complete")
    announce(search.pk, "search_started", {"study_name": "x"})
    Preview.objects.create(search=search, candidate="trial-1")
    folder = search_folder(search.pk)
    for name, size in (("checkpoints/trial-1.pt", 300), ("checkpoints/full-trial-1.pt", 300),
                       ("exports/trial-1.zip", 200), ("previews/1/output.mp4", 1000)):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x" * size)
    optuna.create_study(study_name=engine_config(search).study_name,
                        storage=settings.STUDIO_OPTUNA_STORAGE)
    return search


@pytest.fixture
def clip(user: User, make_clip: Callable[..., Clip]) -> Clip:
    return make_clip(user)


def cache_entry(clip: Clip) -> Path:
    entry = Path(settings.STUDIO_CACHE_DIR) / f"{clip.content_hash}-n8-even-v1"
    entry.mkdir(parents=True, exist_ok=True)
    (entry / "frames.npy").write_bytes(b"f" * 64)
    return entry


def test_search_delete_confirms_then_removes_rows_files_and_study(
        client_in: Client, clip: Clip, make_search: Callable) -> None:
    search = filled(make_search(clip))
    Search.objects.filter(pk=search.pk).update(status=Search.Status.FINISHED)
    kept = make_search(clip)
    url = reverse("studio:search_delete", args=[search.pk])
    page = client_in.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "It removes 4 files, 1.8\xa0KB in all" in text
    assert "Optuna study" in text and "<td>1</td>" in text  # one preview, full training...
    assert engine_config(search).study_name in study_names()
    response = client_in.post(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("studio:clip_detail", args=[clip.pk])
    assert not Search.objects.filter(pk=search.pk).exists()
    assert not (Trial.objects.filter(search_id=search.pk).exists()
                or SearchEvent.objects.filter(search_id=search.pk).exists()
                or Preview.objects.filter(search_id=search.pk).exists())
    assert not search_folder(search.pk).exists()
    assert engine_config(search).study_name not in study_names()
    assert Search.objects.filter(pk=kept.pk).exists() and Path(clip.file.path).is_file()


def test_clip_delete_removes_its_searches_files_and_cache(
        client_in: Client, clip: Clip, make_search: Callable) -> None:
    search = filled(make_search(clip))
    entry = cache_entry(clip)
    files = [Path(clip.file.path), Path(clip.thumbnail.path)]
    url = reverse("studio:clip_delete", args=[clip.pk])
    text = client_in.get(url).content.decode()
    assert "1 search on it" in text and "its cached frames: 1 entry" in text
    assert "the clip's file and thumbnail: 2 files" in text
    assert client_in.post(url).status_code == 302
    assert not Clip.objects.filter(pk=clip.pk).exists()
    assert not Search.objects.filter(pk=search.pk).exists()
    assert not any(f.exists() for f in files) and not entry.exists()
    assert not search_folder(search.pk).exists()
    assert engine_config(search).study_name not in study_names()


def test_cache_shared_with_another_clip_is_kept(
        client_in: Client, clip: Clip, other_user: User, make_clip: Callable) -> None:
    twin = make_clip(other_user)  # the same content, another user's clip
    entry = cache_entry(clip)
    url = reverse("studio:clip_delete", args=[clip.pk])
    assert b"stay cached: another clip has the same content" in client_in.get(url).content
    client_in.post(url)
    assert entry.exists() and Path(twin.file.path).is_file()


def test_another_users_clip_and_search_are_404(
        client: Client, other_user: User, clip: Clip, make_search: Callable) -> None:
    search = make_search(clip)
    client.force_login(other_user)
    for url in (reverse("studio:clip_delete", args=[clip.pk]),
                reverse("studio:search_delete", args=[search.pk])):
        assert client.get(url).status_code == 404
        assert client.post(url).status_code == 404
    assert Clip.objects.filter(pk=clip.pk).exists() and Search.objects.filter(pk=search.pk).exists()


def test_deleting_a_running_search_stops_its_worker_and_leaves_nothing(
        client_in: Client, clip: Clip, make_search: Callable) -> None:
    search = filled(make_search(clip))
    Search.objects.filter(pk=search.pk).update(status=Search.Status.RUNNING)
    url = reverse("studio:search_delete", args=[search.pk])
    assert b"stopped first" in client_in.get(url).content
    assert _cancel_requested(search.pk) is False
    client_in.post(url)
    # The worker's stop check says stop; what it writes on stopping is removed after it.
    assert _cancel_requested(search.pk) is True
    late = search_folder(search.pk) / "checkpoints" / "candidate-1-rung0.pt"
    late.parent.mkdir(parents=True)
    late.write_bytes(b"state saved on stopping")
    optuna.create_study(study_name=engine_config(search).study_name,
                        storage=settings.STUDIO_OPTUNA_STORAGE)  # re-created by a worker
    assert purge_if_deleted(search.pk, search) is True
    assert not search_folder(search.pk).exists()
    assert engine_config(search).study_name not in study_names()
    # Tasks that reach a deleted search end quietly.
    launch_search(search.pk)
    search_worker(search.pk)
    full_train_task(search.pk, "trial-1", 200)
    render_preview_task(123456)
    assert not search_folder(search.pk).exists()


def test_pages_offer_delete_buttons(client_in: Client, clip: Clip,
                                    make_search: Callable) -> None:
    search = make_search(clip)
    page = client_in.get(reverse("studio:clip_detail", args=[clip.pk])).content.decode()
    assert f'href="{reverse("studio:clip_delete", args=[clip.pk])}"' in page
    page = client_in.get(reverse("studio:search_detail", args=[search.pk])).content.decode()
    assert f'href="{reverse("studio:search_delete", args=[search.pk])}"' in page
