"""Per-user limits: active searches, full trainings, jobs waiting for a worker, and storage.

Each is a setting (settings.STUDIO_MAX_*_PER_USER) and each refusal names it, says where the
user stands and what to do. Checks run where a job is started (views, api, previews,
full_training), under a lock on the user's row so two quick posts cannot both slip under a
limit (PostgreSQL; SQLite serializes writers anyway).

Full trainings have no row of their own: their state is the last of their events in the
search's sequence (queued by the view, started, then done / failed / cancelled by the worker).
A cancel request ends one for the count, so a training whose worker vanished cannot block its
owner for ever (the embedded worker also ends such orphans at start: end_orphaned_full_trainings).

Exports run inside their request (exports.py), so none ever waits in a queue to be counted.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect

from webapp.studio.models import Clip, Preview, Search, SearchEvent
from webapp.studio.uploads import format_bytes

# The state a full training's event leaves it in; None: it has ended (for the limits).
FULL_TRAINING_STATES: dict[str, str | None] = {
    "full_training_queued": "queued", "full_training_started": "running",
    "full_training_done": None, "full_training_failed": None,
    "full_training_cancelled": None, "full_training_cancel_requested": None,
}


class LimitExceeded(Exception):
    """A start refused by a limit; the message is one sentence for the user. 429 for the
    counted limits (try again later), 409 for storage (delete something first)."""

    def __init__(self, message: str, status: int = 429) -> None:
        super().__init__(message)
        self.status = status


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def lock_user(user: AbstractBaseUser) -> None:
    """Serialize a user's job starts (call inside transaction.atomic)."""
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()


class FullTrainingJob(NamedTuple):
    state: str  # 'queued' or 'running'
    owner_id: int
    since: datetime  # its first event: when it was started


def active_full_training_jobs(user: AbstractBaseUser | None = None
                              ) -> dict[tuple[int, str], FullTrainingJob]:
    """(search id, 'full-trial-N') -> its job, for full trainings not ended (of every user
    when `user` is None): the state its last event left it in."""
    events = SearchEvent.objects.filter(kind__in=FULL_TRAINING_STATES)
    if user is not None:
        events = events.filter(search__owner=user)
    jobs: dict[tuple[int, str], tuple[str | None, int, datetime]] = {}
    for search_id, owner, kind, candidate, at in events.order_by("search_id", "seq").values_list(
            "search_id", "search__owner_id", "kind", "payload__candidate", "created_at"):
        key = (search_id, str(candidate))
        jobs[key] = (FULL_TRAINING_STATES[kind], owner, jobs[key][2] if key in jobs else at)
    return {key: FullTrainingJob(state, owner, since)
            for key, (state, owner, since) in jobs.items() if state is not None}


def active_full_trainings(user: AbstractBaseUser | None = None) -> dict[tuple[int, str], str]:
    """(search id, 'full-trial-N') -> 'queued' or 'running', for full trainings not ended
    (of every user when `user` is None)."""
    return {key: job.state for key, job in active_full_training_jobs(user).items()}


def queued_jobs(user: AbstractBaseUser) -> int:
    """Jobs of the user waiting for a worker: searches, previews and full trainings."""
    searches = Search.objects.filter(owner=user, status=Search.Status.QUEUED).count()
    previews = Preview.objects.filter(search__owner=user, status=Preview.Status.QUEUED).count()
    full = sum(1 for value in active_full_trainings(user).values() if value == "queued")
    return searches + previews + full


def folder_usage(folder: Path) -> tuple[int, int]:
    """(files, bytes) of the regular files under `folder`: links not followed, a missing
    folder is (0, 0)."""
    files = total = 0
    stack = [str(folder)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
                    files += 1
            except OSError:  # removed meanwhile (a worker's temp file)
                continue
    return files, total


def search_folder(search_id: int) -> Path:
    return Path(settings.MEDIA_ROOT) / "searches" / str(search_id)


def storage_used(user: AbstractBaseUser) -> int:
    """Bytes of the user's files: clips and their thumbnails, and every search's folder
    (checkpoints, previews, exports, full trainings, crops). Walked each time (no size field
    to drift): 18 ms for 30 searches of 150 files each, measured here under load. The
    shared frame cache is not the user's (clips with the same content share it) and is not
    counted."""
    root = Path(settings.MEDIA_ROOT)
    total = folder_usage(root / "clips" / str(user.pk))[1]
    for thumbnail in Clip.objects.filter(owner=user).values_list("thumbnail", flat=True):
        if thumbnail:
            try:
                total += (root / thumbnail).stat().st_size
            except OSError:
                pass
    for search_id in Search.objects.filter(owner=user).values_list("pk", flat=True):
        total += folder_usage(search_folder(search_id))[1]
    return total


def _storage_advice(limit: int) -> str:
    return (f"(the limit, STUDIO_MAX_STORAGE_BYTES_PER_USER, is {format_bytes(limit)}): "
            "delete clips or searches you no longer need, from their pages, to make room.")


def check_storage(user: AbstractBaseUser, incoming: int = 0) -> None:
    """Refuse when the user's files already fill the quota, or would with `incoming` bytes
    more (an upload's size)."""
    limit = settings.STUDIO_MAX_STORAGE_BYTES_PER_USER
    used = storage_used(user)
    if incoming and used + incoming > limit:
        raise LimitExceeded(
            f"This clip ({format_bytes(incoming)}) would take your files to "
            f"{format_bytes(used + incoming)}, over your storage limit; you use "
            f"{format_bytes(used)} {_storage_advice(limit)}", status=409)
    if used >= limit:
        raise LimitExceeded(f"Your files take {format_bytes(used)}, your whole storage "
                            f"{_storage_advice(limit)}", status=409)


def check_queued_jobs(user: AbstractBaseUser) -> None:
    limit = settings.STUDIO_MAX_QUEUED_JOBS_PER_USER
    waiting = queued_jobs(user)
    if waiting >= limit:
        raise LimitExceeded(
            f"You already have {_plural(waiting, 'job', 'jobs')} waiting for a worker "
            f"(searches, previews and full trainings; the limit, "
            f"STUDIO_MAX_QUEUED_JOBS_PER_USER, is {limit}): wait for them to start, or "
            "cancel one.")


def check_search_start(user: AbstractBaseUser) -> None:
    """A new search, or resuming one: active searches, waiting jobs, storage."""
    limit = settings.STUDIO_MAX_ACTIVE_SEARCHES_PER_USER
    active = Search.objects.filter(owner=user, status__in=(
        Search.Status.QUEUED, Search.Status.RUNNING)).count()
    if active >= limit:
        raise LimitExceeded(
            f"You already have {_plural(active, 'search', 'searches')} running or queued "
            f"(the limit, STUDIO_MAX_ACTIVE_SEARCHES_PER_USER, is {limit}): wait for one to "
            "finish or cancel it.")
    check_queued_jobs(user)
    check_storage(user)


def check_full_training_start(user: AbstractBaseUser) -> None:
    limit = settings.STUDIO_MAX_FULL_TRAININGS_PER_USER
    active = active_full_trainings(user)
    if len(active) >= limit:
        where = ", ".join(f"{name} of search {search_id}" for search_id, name in sorted(active))
        raise LimitExceeded(
            f"You already have {_plural(len(active), 'full training', 'full trainings')} "
            f"running or queued ({where}; the limit, STUDIO_MAX_FULL_TRAININGS_PER_USER, is "
            f"{limit}): wait for it to finish or cancel it on its search's page.")
    check_queued_jobs(user)
    check_storage(user)


def check_preview_start(user: AbstractBaseUser) -> None:
    check_queued_jobs(user)


def refusal(request: HttpRequest, error: LimitExceeded, back: str, **kwargs: int) -> HttpResponse:
    """The answer to a refused start: JSON with the error for scripts (Accept:
    application/json), else the message on the page the user came from."""
    if request.headers.get("accept", "").startswith("application/json"):
        return JsonResponse({"error": str(error)}, status=error.status)
    messages.error(request, str(error))
    return redirect(back, **kwargs)


def end_orphaned_full_trainings(reason: str) -> None:
    """Embedded mode at start: its in-memory queue is empty, so a full training still
    queued or running was cut short by the last shutdown. Say so (starting it again
    resumes it), and it stops counting against its owner's limits."""
    from webapp.studio.progress import announce

    for search_id, name in active_full_trainings():
        announce(search_id, "full_training_cancelled", {"candidate": name, "reason": reason})
