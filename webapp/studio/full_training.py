"""Full training from the studio: a chosen candidate trained on to a longer budget by a
worker, with progress over the search's channel. It continues the candidate's saved training
state from its highest rung (engine full_train's `start_from`), so the optimizer never
restarts. Resumable: starting it again (or a redelivered task after a worker died) continues
from the last saved step. The result is the checkpoint `full-trial-N`, which previews and
downloads accept like any candidate.

Cancel: the page's button leaves a marker file beside the checkpoint (`full-trial-N.cancel`:
the web process and the workers share the output folder in both modes); the training checks
it every 25 steps and stops, and starting the same full training again resumes it."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from celery import shared_task
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from engine.safe_files import is_disk_full, log_disk_full, public_message, write_bytes_atomic
from engine.search.search import prepare
from engine.train.checkpoint import checkpoint_path, latest_state
from engine.train.full_train import FullTrainingCancelled, full_train
from webapp.studio import limits
from webapp.studio.access import owned_search
from webapp.studio.broadcast import group_send
from webapp.studio.deletion import purge_if_deleted, search_exists
from webapp.studio.dispatch import refuses_when_queue_down
from webapp.studio.models import Search
from webapp.studio.progress import announce
from webapp.studio.tasks import engine_config

log = logging.getLogger(__name__)
TRIAL = re.compile(r"^trial-\d+$")
MIN_STEPS, MAX_STEPS = 100, 200_000


def full_models(search: Search) -> list[dict]:
    """Finished full trainings of a search (their JSON sidecars), newest first."""
    folder = Path(engine_config(search).out_dir) / "checkpoints"
    found = []
    for sidecar in sorted(folder.glob("full-trial-*.json"), key=lambda p: p.stat().st_mtime,
                          reverse=True):
        found.append(json.loads(sidecar.read_text()))
    return found


@shared_task(acks_late=True)
def full_train_task(search_id: int, candidate: str, steps: int) -> None:
    search = Search.objects.select_related("clip").filter(pk=search_id).first()
    if search is None:
        return  # deleted before a worker took it (deletion.py)
    config = engine_config(search)
    name = f"full-{candidate}"
    out = checkpoint_path(config.out_dir, name)
    marker = cancel_marker(out)
    marker.unlink(missing_ok=True)  # a new start: an old cancel does not stop it

    def progress(step: int, loss: float) -> None:
        group_send(search.group_name, {"type": "search.event", "event": {
            "seq": None, "kind": "full_training_progress", "candidate": name,
            "step": step, "steps": steps, "loss": loss}})

    # The candidate's saved training state at its highest rung: full training continues it
    # (weights, optimizer, data stream) instead of restarting the optimizer.
    state = latest_state(config.out_dir, int(candidate.split("-")[1]))
    announce(search_id, "full_training_started",
             {"candidate": name, "steps": steps, "from_state": state is not None})
    try:
        data = prepare(config)
        result = full_train(checkpoint_path(config.out_dir, candidate), out, data.task,
                            data.train_pairs, data.eval_pairs, config.budget, steps,
                            config.seed, progress, start_from=state,
                            # a deleted search stops it too (its marker went with it)
                            should_stop=lambda: marker.exists() or not search_exists(search_id))
    except FullTrainingCancelled as error:
        if purge_if_deleted(search_id, search):  # what it saved on stopping goes too
            return
        marker.unlink(missing_ok=True)
        announce(search_id, "full_training_cancelled", {"candidate": name, "reason": str(error)})
        return
    except Exception as error:
        if purge_if_deleted(search_id, search):
            return
        if is_disk_full(error):  # its saved state stays: started again, it resumes
            log_disk_full(f"full training of {name} of search {search_id}", error)
        else:
            log.exception("full training of %s failed", name)
        announce(search_id, "full_training_failed",
                 {"candidate": name, "error": public_message(error)})
        return
    summary = {"candidate": name, "from": candidate, "psnr": result["psnr"],
               "ssim": result["ssim"], "steps": steps,
               # 0: started from the checkpoint's weights with a fresh optimizer
               "continued_from_step": result["continued_from_step"],
               "train_seconds": result["train_seconds"]}
    if purge_if_deleted(search_id, search):  # deleted during its last steps
        return
    try:  # the sidecar lists the result: atomic, so never half of one
        write_bytes_atomic(out.with_suffix(".json"), json.dumps(summary).encode())
    except OSError as error:
        if not is_disk_full(error):
            raise
        log_disk_full(f"full training of {name} of search {search_id}", error)
        announce(search_id, "full_training_failed", {"candidate": name,
                                                     "error": public_message(error)})
        return
    announce(search_id, "full_training_done", summary)


def cancel_marker(out: Path) -> Path:
    return out.with_suffix(".cancel")


@login_required
@require_POST
def full_train_cancel(request: HttpRequest, search_id: int) -> HttpResponse:
    search = owned_search(request.user, search_id)
    candidate = request.POST.get("candidate", "")
    if not TRIAL.match(candidate):
        return HttpResponse("candidate must be trial-N", status=400, content_type="text/plain")
    out = checkpoint_path(engine_config(search).out_dir, f"full-{candidate}")
    out.parent.mkdir(parents=True, exist_ok=True)
    cancel_marker(out).touch()
    announce(search.pk, "full_training_cancel_requested", {"candidate": f"full-{candidate}"})
    if request.headers.get("Accept", "").startswith("application/json"):
        return HttpResponse('{"cancel_requested": true}', content_type="application/json")
    messages.info(request, f"Cancelling the full training of {candidate}: it stops within "
                           "seconds; start it again to resume.")
    return redirect("studio:search_detail", search_id=search.pk)


@login_required
@require_POST
@refuses_when_queue_down
def full_train_start(request: HttpRequest, search_id: int) -> HttpResponse:
    search = owned_search(request.user, search_id)
    candidate = request.POST.get("candidate", "")
    try:
        # Trains *to* this many steps, on from the top rung's state: 4x the top rung.
        default = max(5000, 4 * engine_config(search).top_steps)
        steps = int(request.POST.get("steps", default))
    except ValueError:
        steps = -1
    if not TRIAL.match(candidate) or not (MIN_STEPS <= steps <= MAX_STEPS):
        return HttpResponse(f"candidate must be trial-N and steps {MIN_STEPS}..{MAX_STEPS}",
                            status=400, content_type="text/plain")
    if not checkpoint_path(engine_config(search).out_dir, candidate).is_file():
        return HttpResponse(f"{candidate} has no trained weights: pick a complete trial",
                            status=400, content_type="text/plain")
    try:
        with transaction.atomic():
            limits.lock_user(request.user)
            limits.check_full_training_start(request.user)
            # Its first event: the limits count it as queued until the worker starts it.
            announce(search.pk, "full_training_queued",
                     {"candidate": f"full-{candidate}", "steps": steps})
            full_train_task.delay_on_commit(search.pk, candidate, steps)
    except limits.LimitExceeded as error:
        return limits.refusal(request, error, "studio:search_detail", search_id=search.pk)
    messages.info(request, f"Full training of {candidate} to {steps:,} steps started; it "
                           f"appears below as full-{candidate} when done.")
    return redirect("studio:search_detail", search_id=search.pk)
