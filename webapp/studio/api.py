"""JSON and control endpoints: the data behind the live page, for scripts too."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from engine.config import ConfigError
from engine.data.enhancement import make_task
from engine.registry import UnknownNameError
from engine.search.space_bounds import space_bounds
from webapp.studio import limits
from webapp.studio.access import owned_search
from webapp.studio.dispatch import refuses_when_queue_down
from webapp.studio.forms import estimate_from
from webapp.studio.models import Search
from webapp.studio.progress import announce

EVENT_PAGE = 500


@login_required
@require_GET
def space_bounds_view(request: HttpRequest) -> JsonResponse:
    """Smallest and largest MACs/params of the space for a task at an output resolution; with
    the form's budget fields in the query (`n_trials`, `fidelity`, ...) also `estimate`: the
    search's cost in steps and time (forms.search_estimate), or its `error`."""
    # The estimate does not depend on the task or resolution: it answers even when they fail.
    extra = {"estimate": estimate_from(request.GET)} if "n_trials" in request.GET else {}
    try:
        task = make_task(request.GET.get("task", "sr_x2"))
        width = int(request.GET.get("width", 1280))
        height = int(request.GET.get("height", 720))
        if not (16 <= width <= 7680 and 16 <= height <= 4320):
            raise ConfigError("resolution must be between 16x16 and 7680x4320")
    except (UnknownNameError, ConfigError, ValueError) as error:
        return JsonResponse({"error": str(error), **extra}, status=400)
    bounds = space_bounds(task.scale, (width, height))
    return JsonResponse({"task": task.name, "width": width, "height": height,
                         "min_macs": bounds.min_macs, "max_macs": bounds.max_macs,
                         "min_params": bounds.min_params, "max_params": bounds.max_params,
                         **extra})


@login_required
@require_GET
def search_data(request: HttpRequest, search_id: int) -> JsonResponse:
    """The search, its trials, and events after `?after=N` (paged by `seq`)."""
    search = owned_search(request.user, search_id)
    try:
        after = int(request.GET.get("after", 0))
    except ValueError:
        return JsonResponse({"error": "after must be an integer event sequence number"},
                            status=400)
    events = list(search.events.filter(seq__gt=after)[: EVENT_PAGE + 1])
    more = len(events) > EVENT_PAGE
    events = events[:EVENT_PAGE]
    return JsonResponse({
        "search": search.to_dict(),
        "trials": [t.to_dict() for t in search.trials.all()],
        "events": [e.to_dict() for e in events],
        "next_after": events[-1].seq if events else after,
        "more": more,
    })


@login_required
@require_GET
def trial_data(request: HttpRequest, search_id: int, number: int) -> JsonResponse:
    """One trial in full, its genome included: the live page's rows are slim, and it reads
    this when a trial's detail opens."""
    search = owned_search(request.user, search_id)
    trial = search.trials.filter(number=number).first()
    if trial is None:
        raise Http404("no such trial")
    return JsonResponse({"trial": trial.to_dict()})


@login_required
@require_POST
def search_cancel(request: HttpRequest, search_id: int) -> HttpResponse:
    search = owned_search(request.user, search_id)
    if search.is_active:
        Search.objects.filter(pk=search.pk).update(cancel_requested=True)
        announce(search.pk, "cancel_requested", {})
        # Still waiting for a worker: nothing runs to stop, so it ends now (its queued task
        # then finds it ended), instead of when the jobs ahead of it let a worker take it.
        if Search.objects.filter(pk=search.pk, status=Search.Status.QUEUED).update(
                status=Search.Status.CANCELLED, finished_at=timezone.now()):
            search.refresh_from_db()
            announce(search.pk, "search_cancelled", {"finished": search.finished_trials,
                                                     "status": search.status})
    return _back(request, search)


@login_required
@require_POST
@refuses_when_queue_down
def search_resume(request: HttpRequest, search_id: int) -> HttpResponse:
    from webapp.studio.tasks import launch_search

    search = owned_search(request.user, search_id)
    resumable = (Search.Status.CANCELLED, Search.Status.INTERRUPTED, Search.Status.FAILED)
    try:
        with transaction.atomic():
            if search.status in resumable:  # it becomes active again: a new search's limits
                limits.lock_user(request.user)
                limits.check_search_start(request.user)
            if search.status in resumable or (search.is_active and request.POST.get("force")):
                Search.objects.filter(pk=search.pk).update(
                    status=Search.Status.QUEUED, cancel_requested=False, error="",
                    finished_at=None)
                announce(search.pk, "search_resumed", {})
                launch_search.delay_on_commit(search.pk)
    except limits.LimitExceeded as error:
        return limits.refusal(request, error, "studio:search_detail", search_id=search.pk)
    return _back(request, search)


def _back(request: HttpRequest, search: Search) -> HttpResponse:
    if request.headers.get("accept", "").startswith("application/json"):
        search.refresh_from_db()
        return JsonResponse({"search": search.to_dict()})
    return redirect("studio:search_detail", search_id=search.pk)


@login_required
@require_GET
def search_plot(request: HttpRequest, search_id: int) -> FileResponse:
    search = owned_search(request.user, search_id)
    path = Path(settings.MEDIA_ROOT) / "searches" / str(search.pk) / "pareto.png"
    if not path.is_file():
        raise Http404("the plot is written when the search finishes")
    return FileResponse(path.open("rb"), content_type="image/png")
