"""Page views: typed function views; every object is looked up through its owner (access.py).

The live part of the search page (its JS and charts) lives in search_detail.html and
static/studio/search.js; the JSON and control endpoints live in api.py.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from engine.config import DEFAULT_RESOLUTION, format_count
from engine.data.enhancement import TASKS, make_task
from engine.data.frame_cache import content_hash
from engine.safe_files import public_message
from engine.search.space_bounds import space_bounds
from webapp.studio import limits, tasks
from webapp.studio.access import owned_clip, owned_search
from webapp.studio.dispatch import refuses_when_queue_down
from webapp.studio.forms import (
    STEPS_PER_SECOND,
    SearchForm,
    UploadForm,
    estimate_from,
    task_choices,
)
from webapp.studio.limits import LimitExceeded
from webapp.studio.media import ranged_file_response
from webapp.studio.models import Clip, Search
from webapp.studio.sample_clip import DISPLAY_NAME, sample_clip_path
from webapp.studio.upload_request import UploadRefused, read_upload_body
from webapp.studio.uploads import (
    SizeLimitHandler,
    UploadRejected,
    create_clip,
    file_chunks,
    too_large_message,
)


def _task_labels() -> dict[str, str]:
    return dict(task_choices())


def _render_home(request: HttpRequest, form: UploadForm, status: int = 200,
                 upload_error: str = "") -> HttpResponse:
    labels = _task_labels()
    searches = list(Search.objects.filter(owner=request.user).select_related("clip"))
    for search in searches:
        task = search.config.get("task", "")
        search.task_label = labels.get(task, task)  # type: ignore[attr-defined]
    return render(request, "studio/home.html", {
        "clips": Clip.objects.filter(owner=request.user),
        "searches": searches,
        "form": form,
        "upload_error": upload_error,
        "max_upload": settings.STUDIO_MAX_UPLOAD_BYTES,
        "max_seconds": settings.STUDIO_MAX_CLIP_SECONDS,
    }, status=status)


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return _render_home(request, UploadForm())


# CSRF is checked by the inner view: the size limiter must join the upload handlers before
# anything (the CSRF middleware included) reads the request body.
@csrf_exempt
@login_required
@require_http_methods(["GET", "POST"])
def clip_upload(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return redirect("studio:home")
    limiter = SizeLimitHandler(request, settings.STUDIO_MAX_UPLOAD_BYTES)
    request.upload_handlers.insert(0, limiter)
    try:  # before CSRF reads it: a body Django would refuse gets a clear answer, not a bare 400
        read_upload_body(request)
    except UploadRefused as error:
        if limiter.too_large:
            return _render_home(request, UploadForm(), status=400,
                                upload_error=too_large_message(limiter.limit))
        return _render_home(request, UploadForm(), status=error.status,
                            upload_error=str(error))
    return _clip_upload(request, limiter)


@csrf_protect
def _clip_upload(request: HttpRequest, limiter: SizeLimitHandler) -> HttpResponse:
    form = UploadForm(request.POST, request.FILES)
    if limiter.too_large:
        return _render_home(request, UploadForm(), status=400,
                            upload_error=too_large_message(limiter.limit))
    if not form.is_valid():
        return _render_home(request, form, status=400)
    upload = form.cleaned_data["file"]
    try:
        limits.check_storage(request.user, incoming=upload.size or 0)
    except LimitExceeded as error:
        return _render_home(request, UploadForm(), status=error.status,
                            upload_error=str(error))
    try:
        clip = create_clip(request.user, upload.chunks(), upload.name or "clip")
    except UploadRejected as error:
        return _render_home(request, UploadForm(), status=error.status, upload_error=str(error))
    messages.success(request, f"Uploaded {clip.original_name}: {clip.width}x{clip.height}, "
                              f"{clip.frame_count} frames.")
    return redirect("studio:clip_detail", clip_id=clip.pk)


@login_required
@require_POST
def clip_sample(request: HttpRequest) -> HttpResponse:
    """Give the user the sample clip (made once from real photos), through the upload path."""
    try:
        path = sample_clip_path()
        existing = Clip.objects.filter(owner=request.user, content_hash=content_hash(path),
                                       original_name=DISPLAY_NAME).first()
        if existing is not None:
            messages.info(request, "You already have the sample clip: here it is.")
            return redirect("studio:clip_detail", clip_id=existing.pk)
        limits.check_storage(request.user, incoming=path.stat().st_size)
        clip = create_clip(request.user, file_chunks(path), DISPLAY_NAME)
    except LimitExceeded as error:
        messages.error(request, str(error))
        return redirect("studio:home")
    except (UploadRejected, RuntimeError, OSError) as error:
        messages.error(request, f"The sample clip could not be made: {public_message(error)}")
        return redirect("studio:home")
    messages.success(request, "Added the sample clip: 48 frames panning over three photos.")
    return redirect("studio:clip_detail", clip_id=clip.pk)


def _clip_rows(clip: Clip) -> list[tuple[str, str]]:
    size_mb = clip.size_bytes / (1 << 20)
    return [
        ("File name", clip.original_name),
        ("Codec", clip.codec),
        ("Resolution", f"{clip.width} x {clip.height}"),
        ("Frame rate", f"{clip.fps:.3g} fps"),
        ("Frames", str(clip.frame_count)),
        ("Duration", f"{clip.duration_s:.2f} s"),
        ("Size", f"{size_mb:.2f} MB" if size_mb >= 0.1 else f"{clip.size_bytes / 1024:.1f} KB"),
        ("Content hash", clip.content_hash),
    ]


@login_required
@require_GET
def clip_detail(request: HttpRequest, clip_id: int) -> HttpResponse:
    clip = owned_clip(request.user, clip_id)
    labels = _task_labels()
    searches = list(clip.searches.all())
    for search in searches:
        task = search.config.get("task", "")
        search.task_label = labels.get(task, task)  # type: ignore[attr-defined]
    return render(request, "studio/clip_detail.html", {
        "clip": clip, "rows": _clip_rows(clip), "searches": searches,
        "video_type": mimetypes.guess_type(clip.file.name)[0] or "",
    })


def _serve(field: Any, content_type: str, filename: str | None = None) -> FileResponse:
    if not field:
        raise Http404("no such file")
    try:
        handle = field.open("rb")
    except FileNotFoundError as error:
        raise Http404("the file is missing from storage") from error
    return FileResponse(handle, content_type=content_type, filename=filename)


@login_required
@require_GET
def clip_file(request: HttpRequest, clip_id: int) -> HttpResponse:
    """The clip itself, with Range support so the browser's player can seek."""
    clip = owned_clip(request.user, clip_id)
    if not clip.file:
        raise Http404("no such file")
    content_type = mimetypes.guess_type(clip.file.name)[0] or "application/octet-stream"
    response = ranged_file_response(request, Path(clip.file.path), content_type)
    response["Content-Disposition"] = content_disposition_header(
        False, clip.original_name)
    return response


@login_required
@require_GET
def clip_thumbnail(request: HttpRequest, clip_id: int) -> FileResponse:
    clip = owned_clip(request.user, clip_id)
    return _serve(clip.thumbnail, "image/png")


def _bounds_context(task_name: str, width: Any, height: Any) -> dict[str, Any] | None:
    """What the space allows for the form's task and resolution (None when they are invalid)."""
    try:
        task = make_task(task_name)
        w, h = int(width), int(height)
    except (KeyError, TypeError, ValueError):
        return None
    if not (16 <= w <= 7680 and 16 <= h <= 4320):
        return None
    bounds = space_bounds(task.scale, (w, h))
    return {"width": w, "height": h,
            "min_macs": format_count(bounds.min_macs), "max_macs": format_count(bounds.max_macs),
            "min_params": format_count(bounds.min_params),
            "max_params": format_count(bounds.max_params)}


@login_required
@require_http_methods(["GET", "POST"])
@refuses_when_queue_down
def search_new(request: HttpRequest) -> HttpResponse:
    clips = Clip.objects.filter(owner=request.user)
    status = 200
    if request.method == "POST":
        form = SearchForm(request.POST, user=request.user)
        status = 400
        if form.is_valid():
            try:
                search = _create_search(request, form)
            except LimitExceeded as error:  # shown above the form, the settings kept
                form.add_error(None, str(error))
                status = error.status
            else:
                return redirect("studio:search_detail", search_id=search.pk)
        task_name = form.data.get("task", "")
        width, height = form.data.get("width"), form.data.get("height")
    else:
        initial: dict[str, Any] = {}
        wanted = request.GET.get("clip", "")
        if wanted.isdigit() and clips.filter(pk=int(wanted)).exists():
            initial["clip"] = int(wanted)
        form = SearchForm(initial=initial, user=request.user)
        task_name = form["task"].initial
        width, height = DEFAULT_RESOLUTION
    if task_name not in TASKS:
        task_name = form["task"].initial
    values = form.data if form.is_bound else {name: form[name].initial for name in ESTIMATED}
    return render(request, "studio/search_new.html", {
        "form": form, "has_clips": clips.exists(),
        "bounds": _bounds_context(task_name, width, height),
        "estimate": estimate_context(estimate_from(values)),
    }, status=status)


# The form fields the cost estimate reads (forms.estimate_from).
ESTIMATED = ("n_trials", "fidelity", "min_steps", "max_steps", "eta", "steps", "workers")


def duration_text(seconds: float) -> str:
    """A rough duration: '40 s', '26 min', '3.5 h' (search_new.js writes the same)."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_context(estimate: dict[str, Any]) -> dict[str, Any]:
    """The estimate as the form page's side card writes it (search_new.js redraws it the
    same way from the JSON answer of studio:space_bounds)."""
    context: dict[str, Any] = {"steps_per_second": STEPS_PER_SECOND, "error": ""}
    if "error" in estimate:
        return {**context, "error": estimate["error"]}
    low, high = estimate["seconds"]
    return {**context, "text": {
        "rungs": " → ".join(f"{count:,} × {steps:,}" for count, steps in zip(
            estimate["evaluations_per_rung"], estimate["rung_steps"], strict=True)),
        **{key: f"{estimate[key]:,}" for key in ("total_steps", "candidate_steps",
                                                 "promotion_steps", "baseline_steps")},
        "time": f"{duration_text(low)} to {duration_text(high)}",
    }}


def _create_search(request: HttpRequest, form: SearchForm) -> Search:
    assert form.config is not None
    clip: Clip = form.cleaned_data["clip"]
    config = form.config.with_changes(clip=clip.file.name)  # engine_config sets the real path
    with transaction.atomic():
        limits.lock_user(request.user)
        limits.check_search_start(request.user)
        search = Search.objects.create(
            owner=request.user, clip=clip, name=form.cleaned_data["name"],
            config=config.to_dict(), workers=form.cleaned_data["workers"],
        )
        tasks.launch_search.delay_on_commit(search.pk)
    return search


@login_required
@require_GET
def search_detail(request: HttpRequest, search_id: int) -> HttpResponse:
    from webapp.studio.consumers import live_snapshot
    from webapp.studio.full_training import full_models

    search = owned_search(request.user, search_id)
    crop = search.events.filter(kind="front_preview").order_by("-seq").first()
    snapshot = live_snapshot(search)
    # The page draws from this at once; its socket then sends only what changed after it.
    return render(request, "studio/search_detail.html", {
        "search": search, "clip": search.clip, "full_models": full_models(search),
        "snapshot": snapshot, "progress": search_progress(snapshot),
        "latest_crop": crop.payload if crop else None,
        "has_previews": search.previews.filter(status="ready", mode="measured").exists()})


def search_progress(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Progress in evaluations over all rungs (the unit of the page's bar and ETA): done and
    planned in all, per rung, and the mean training seconds of one evaluation at each rung
    so far (None where none finished yet)."""
    search = snapshot["search"]
    steps = search["rung_steps"]
    done = [0] * len(steps)
    seconds: list[list[float]] = [[] for _ in steps]
    for row in snapshot["trials"]:
        for entry in row.get("rungs") or []:
            rung = entry.get("rung", 0)
            if rung < len(steps) and "failed" not in entry:
                done[rung] += 1
                if entry.get("train_seconds") is not None:
                    seconds[rung].append(entry["train_seconds"])
    return {"evaluations_done": search["evaluations_done"],
            "evaluations_planned": search["evaluations_planned"],
            "rung_steps": steps, "done_per_rung": done, "planned_per_rung": search["rung_plan"],
            "mean_seconds_per_rung": [sum(s) / len(s) if s else None for s in seconds]}
