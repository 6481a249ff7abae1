"""Preview rendering for the studio: a thin Celery task around engine.deploy.render, with
progress over the search's channel, and the views that start and show a preview."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from celery import shared_task
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from engine.data.enhancement import make_task
from engine.deploy.render import render_preview
from engine.safe_files import is_disk_full, log_disk_full, public_message
from engine.train.checkpoint import checkpoint_path, load_checkpoint
from engine.train.device import resolve_device
from webapp.studio import limits
from webapp.studio.access import owned_search
from webapp.studio.broadcast import group_send
from webapp.studio.deletion import purge_if_deleted
from webapp.studio.dispatch import refuses_when_queue_down
from webapp.studio.media import ranged_file_response
from webapp.studio.models import Preview
from webapp.studio.progress import announce
from webapp.studio.tasks import engine_config

log = logging.getLogger(__name__)


class PreviewDeleted(Exception):
    """Raised from the progress callback when the preview's row is gone: stops the render."""


class PreviewCancelled(Exception):
    """Raised from the progress callback when its owner pressed Cancel: stops the render
    between two frames (a frame takes well under a second)."""


CANDIDATE = re.compile(r"^((?:full-)?trial-\d+|baseline-(espcn|fsrcnn))$")
PREVIEW_FILES = ("output.mp4", "input.mp4", "reference.mp4", "metrics.json")
MAX_FRAMES = 60


@shared_task
def render_preview_task(preview_id: int) -> None:
    preview = Preview.objects.select_related("search__clip").filter(pk=preview_id).first()
    if preview is None:
        return  # its search was deleted before a worker took it (deletion.py)
    search = preview.search
    config = engine_config(search)
    group = search.group_name
    if not Preview.objects.filter(pk=preview_id, status=Preview.Status.QUEUED).update(
            status=Preview.Status.RUNNING, heartbeat_at=timezone.now()):
        return  # cancelled while it waited (or redelivered after it ended): nothing to do

    def progress(done: int, total: int) -> None:
        if not Preview.objects.filter(pk=preview_id, cancel_requested=False).update(
                frames_done=done, frames_total=total, heartbeat_at=timezone.now()):
            if Preview.objects.filter(pk=preview_id).exists():
                raise PreviewCancelled(f"preview {preview_id} was cancelled")
            raise PreviewDeleted(f"preview {preview_id} was deleted")  # stop rendering
        group_send(group, {"type": "search.event", "event": {
            "seq": None, "kind": "preview_progress", "preview": preview_id,
            "done": done, "total": total}})

    try:
        net, _ = load_checkpoint(checkpoint_path(config.out_dir, preview.candidate))
        task = make_task(config.task, config.noise_sigma, config.jpeg_quality)
        result = render_preview(net, task, Path(config.clip), preview.folder, mode=preview.mode,
                                max_frames=MAX_FRAMES, threads=config.budget.threads,
                                progress=progress, device=resolve_device(config.device))
    except PreviewCancelled:
        shutil.rmtree(preview.folder, ignore_errors=True)  # half a preview is no preview
        Preview.objects.filter(pk=preview_id).update(status=Preview.Status.CANCELLED,
                                                     error="cancelled by you")
        announce(search.pk, "preview_cancelled", {"preview": preview_id})
        return
    except Exception as error:  # shown on the page; the search itself is unaffected
        if not Preview.objects.filter(pk=preview_id).exists():
            # Deleted with its search meanwhile: remove what this render wrote since.
            shutil.rmtree(preview.folder, ignore_errors=True)
            purge_if_deleted(search.pk)
            return
        if is_disk_full(error):  # one line: the cause is known, the message says what to do
            log_disk_full(f"preview {preview_id}", error)
        else:
            log.exception("preview %s failed", preview_id)
        message = public_message(error)  # no server path, no ffmpeg command line
        Preview.objects.filter(pk=preview_id).update(status=Preview.Status.FAILED,
                                                     error=message)
        announce(search.pk, "preview_failed", {"preview": preview_id, "error": message})
        return
    result.pop("files", None)  # absolute paths stay on the server
    if not Preview.objects.filter(pk=preview_id).update(status=Preview.Status.READY,
                                                        result=result):
        shutil.rmtree(preview.folder, ignore_errors=True)  # deleted during its last frame
        purge_if_deleted(search.pk)
        return
    announce(search.pk, "preview_ready", {"preview": preview_id,
                                          "candidate": preview.candidate})


@login_required
@require_POST
@refuses_when_queue_down
def preview_create(request: HttpRequest, search_id: int) -> HttpResponse:
    search = owned_search(request.user, search_id)
    candidate = request.POST.get("candidate", "")
    mode = request.POST.get("mode", Preview.Mode.MEASURED)
    if not CANDIDATE.match(candidate) or mode not in Preview.Mode.values:
        return HttpResponse("candidate must be trial-N or baseline-espcn/fsrcnn and mode "
                            "measured or apply", status=400, content_type="text/plain")
    if not checkpoint_path(engine_config(search).out_dir, candidate).is_file():
        return HttpResponse(f"{candidate} has no trained weights (rejected, duplicate, failed "
                            "or not finished yet): pick a complete trial", status=400,
                            content_type="text/plain")
    try:
        with transaction.atomic():
            limits.lock_user(request.user)
            limits.check_preview_start(request.user)
            preview = Preview.objects.create(search=search, candidate=candidate, mode=mode)
            render_preview_task.delay_on_commit(preview.pk)
    except limits.LimitExceeded as error:
        return limits.refusal(request, error, "studio:search_detail", search_id=search.pk)
    return redirect("studio:preview_detail", preview_id=preview.pk)


def owned_preview(request: HttpRequest, preview_id: int) -> Preview:
    return get_object_or_404(Preview.objects.select_related("search__clip"), pk=preview_id,
                             search__owner=request.user)


def coverage(preview: Preview) -> str:
    """Which frames of its clip a preview covers: 'the first 60 of 120 frames' (a preview
    renders the first MAX_FRAMES, so a longer clip is only partly shown) or 'all 48 frames'."""
    clip_frames = preview.search.clip.frame_count
    frames = ((preview.result or {}).get("frames") or preview.frames_total
              or min(MAX_FRAMES, clip_frames))
    if frames >= clip_frames:
        return f"all {clip_frames} frames"
    return f"the first {frames} of {clip_frames} frames"


def progress_text(preview: Preview, queue: dict | None) -> str:
    """The line the preview page shows while a preview waits or renders (and preview.js
    re-reads from the JSON answer)."""
    if preview.status == Preview.Status.QUEUED:
        return f"Waiting for a worker: {queue['text']}." if queue else "Waiting for a worker."
    if preview.status == Preview.Status.RUNNING:
        if preview.cancel_requested:
            return "Cancelling: it stops at the next frame."
        return f"Rendering {coverage(preview)}: {preview.frames_done} done."
    return preview.get_status_display()


@login_required
@require_GET
def preview_detail(request: HttpRequest, preview_id: int) -> HttpResponse:
    """The preview's page, or with Accept: application/json its state (polled by preview.js
    while it waits or renders)."""
    from webapp.studio.queue_position import preview_place

    preview = owned_preview(request, preview_id)
    queue = preview_place(preview)
    context = {"preview": preview, "search": preview.search, "queue": queue,
               "coverage": coverage(preview), "progress": progress_text(preview, queue)}
    if request.headers.get("accept", "").startswith("application/json"):
        response: HttpResponse = JsonResponse({"preview": preview.to_dict(),
                                               "progress": context["progress"]})
    else:
        response = render(request, "studio/preview_detail.html", context)
    patch_vary_headers(response, ["Accept"])  # one URL, two answers: caches keep both
    return response


@login_required
@require_POST
def preview_cancel(request: HttpRequest, preview_id: int) -> HttpResponse:
    """A queued preview ends at once; a running one stops at its next frame."""
    preview = owned_preview(request, preview_id)
    if Preview.objects.filter(pk=preview.pk, status=Preview.Status.QUEUED).update(
            status=Preview.Status.CANCELLED, error="cancelled by you before it started"):
        announce(preview.search_id, "preview_cancelled", {"preview": preview.pk})
    else:
        Preview.objects.filter(pk=preview.pk, status=Preview.Status.RUNNING).update(
            cancel_requested=True)
    if request.headers.get("accept", "").startswith("application/json"):
        preview.refresh_from_db()
        return JsonResponse({"preview": preview.to_dict()})
    return redirect("studio:preview_detail", preview_id=preview.pk)


@login_required
@require_GET
def preview_file(request: HttpRequest, preview_id: int, name: str) -> HttpResponse:
    preview = owned_preview(request, preview_id)
    if name not in PREVIEW_FILES:
        raise Http404("no such preview file")
    return ranged_file_response(request, preview.folder / name)
