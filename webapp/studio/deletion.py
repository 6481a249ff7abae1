"""Deleting a clip or a search, with every file that belongs to it.

A search owns its rows (trials, events, previews), its output folder (checkpoints, previews,
exports, full trainings, crops) and its Optuna study; a clip owns its file, its thumbnail, its
searches and its frame-cache entries when no other clip (of any user) has the same content.
The GET page lists what will go (plan_*), the POST removes it (delete_*).

A search still queued or running is told to stop (cancel_requested) and its row goes at once:
the request never waits for a worker (sync views share one thread). A worker notices the row is
gone at its next stop check, and `purge_if_deleted` removes what it wrote after the deletion,
so no folder or study outlives its search.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from engine.config import SearchConfig
from engine.search.study import make_storage
from webapp.studio.access import owned_clip, owned_search
from webapp.studio.broadcast import group_send
from webapp.studio.limits import folder_usage, search_folder
from webapp.studio.models import Clip, Search

log = logging.getLogger(__name__)


@dataclass
class SearchPlan:
    """What deleting one search removes."""

    search: Search
    files: int
    bytes: int
    previews: int
    full_trainings: int
    exports: int
    active: bool


@dataclass
class ClipPlan:
    clip: Clip
    searches: list[SearchPlan]
    clip_files: int = 0
    clip_bytes: int = 0
    cache_entries: list[Path] = field(default_factory=list)
    cache_bytes: int = 0

    @property
    def total_files(self) -> int:
        return self.clip_files + sum(s.files for s in self.searches) + len(self.cache_entries)

    @property
    def total_bytes(self) -> int:
        return self.clip_bytes + sum(s.bytes for s in self.searches) + self.cache_bytes


def plan_search(search: Search) -> SearchPlan:
    folder = search_folder(search.pk)
    files, size = folder_usage(folder)
    return SearchPlan(
        search=search, files=files, bytes=size, previews=search.previews.count(),
        full_trainings=len(list((folder / "checkpoints").glob("full-trial-*.pt"))),
        exports=len(list((folder / "exports").glob("*.zip"))), active=search.is_active)


def cache_entries(clip: Clip) -> list[Path]:
    """The frame-cache entries of the clip's content (decoded frames; IMDN's outputs on
    them), unless another clip has the same content: then they are its too."""
    if Clip.objects.filter(content_hash=clip.content_hash).exclude(pk=clip.pk).exists():
        return []
    root = Path(settings.STUDIO_CACHE_DIR)
    key = clip.content_hash  # frame-cache keys start with it; prototype keys embed it
    entries = list(root.glob(f"{key}-*"))
    for folder in (root / "prototype", root / "prototype" / "locks"):
        entries += [p for p in folder.glob(f"*-{key}-*") if p.is_file()]
    return sorted(entries)


def plan_clip(clip: Clip) -> ClipPlan:
    plan = ClipPlan(clip=clip, searches=[plan_search(s) for s in clip.searches.all()])
    for stored in (clip.file, clip.thumbnail):
        if stored:
            path = Path(settings.MEDIA_ROOT) / stored.name
            if path.is_file():
                plan.clip_files += 1
                plan.clip_bytes += path.stat().st_size
    plan.cache_entries = cache_entries(clip)
    for entry in plan.cache_entries:
        plan.cache_bytes += folder_usage(entry)[1] if entry.is_dir() else entry.stat().st_size
    return plan


def delete_study(config: SearchConfig) -> None:
    """The search's Optuna study (trials, attributes, heartbeats); none yet is fine."""
    try:
        optuna.delete_study(study_name=config.study_name, storage=make_storage(config.storage))
    except KeyError:
        pass  # never created: the search was deleted before a worker prepared it


def delete_search(search: Search) -> None:
    """Rows, output folder and Optuna study of a search; a running one is told to stop."""
    from webapp.studio.tasks import engine_config  # tasks imports this module

    config = engine_config(search)
    pk, group = search.pk, search.group_name  # delete() clears the instance's pk
    if search.is_active:
        # The stop request a worker reads; the row going just after says the same.
        Search.objects.filter(pk=pk).update(cancel_requested=True)
    with transaction.atomic():
        search.delete()  # trials, events and previews cascade
    group_send(group, {"type": "search.event", "event": {"seq": None, "kind": "search_deleted"}})
    shutil.rmtree(search_folder(pk), ignore_errors=True)
    try:
        delete_study(config)
    except Exception:  # the rows and files are gone; a stale study is only storage
        log.exception("search %s: could not delete its Optuna study %s", pk, config.study_name)


def delete_clip(clip: Clip) -> None:
    """The clip's searches (as delete_search), file, thumbnail and unshared cache entries."""
    entries = cache_entries(clip)
    for search in clip.searches.select_related("clip"):
        delete_search(search)
    stored = [f for f in (clip.file, clip.thumbnail) if f]
    clip.delete()
    for f in stored:
        f.storage.delete(f.name)
    for entry in entries:
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def search_exists(search_id: int) -> bool:
    return Search.objects.filter(pk=search_id).exists()


def purge_if_deleted(search_id: int, search: Search | None = None) -> bool:
    """Worker side: True when the search was deleted meanwhile, after removing what this
    worker wrote since (its folder, and the study it may have re-created); `search` is the
    row as the worker loaded it (its config names the study)."""
    try:
        if search_exists(search_id):
            return False
    except Exception:  # the database is away: the caller's own retries go on
        return False
    log.info("search %s was deleted while a worker ran it: removing what it left", search_id)
    shutil.rmtree(search_folder(search_id), ignore_errors=True)
    if search is not None:
        from webapp.studio.tasks import engine_config

        try:
            delete_study(engine_config(search))
        except Exception:
            log.exception("search %s: could not delete its Optuna study", search_id)
    return True


def _described(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


@login_required
@require_http_methods(["GET", "POST"])
def clip_delete(request: HttpRequest, clip_id: int) -> HttpResponse:
    """GET: what deleting the clip removes; POST: remove it. Another user's clip is 404."""
    clip = owned_clip(request.user, clip_id)
    if request.method == "POST":
        name, searches = clip.original_name, clip.searches.count()
        delete_clip(clip)
        messages.success(request, f"Deleted the clip {name} and "
                                  f"{_described(searches, 'search', 'searches')} on it.")
        return redirect("studio:home")
    plan = plan_clip(clip)
    return render(request, "studio/delete_confirm.html", {
        "kind": "clip", "clip": clip, "plan": plan, "searches": plan.searches,
        "total_files": plan.total_files, "total_bytes": plan.total_bytes,
        "shared_content": Clip.objects.filter(content_hash=clip.content_hash).exclude(
            pk=clip.pk).exists(),
        "action": reverse("studio:clip_delete", args=[clip.pk]),
        "back": reverse("studio:clip_detail", args=[clip.pk])})


@login_required
@require_http_methods(["GET", "POST"])
def search_delete(request: HttpRequest, search_id: int) -> HttpResponse:
    """GET: what deleting the search removes; POST: remove it (a running one is stopped)."""
    search = owned_search(request.user, search_id)
    if request.method == "POST":
        name, clip_id = str(search), search.clip_id
        delete_search(search)
        messages.success(request, f"Deleted the search {name}.")
        return redirect("studio:clip_detail", clip_id=clip_id)
    plan = plan_search(search)
    return render(request, "studio/delete_confirm.html", {
        "kind": "search", "search": search, "clip": search.clip, "searches": [plan],
        "total_files": plan.files, "total_bytes": plan.bytes,
        "action": reverse("studio:search_delete", args=[search.pk]),
        "back": reverse("studio:search_detail", args=[search.pk])})
