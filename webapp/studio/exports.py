"""Model download: a trial's (or a learned baseline's) network as a zip of ONNX, TorchScript
and a model card, exported on first request by engine.deploy.export and kept beside the
checkpoint (re-exported when the checkpoint is newer)."""

from __future__ import annotations

import re
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from engine.deploy.export import ExportError, export_bundle
from engine.safe_files import DISK_FULL_MESSAGE, is_disk_full, log_disk_full, public_message
from engine.train.checkpoint import checkpoint_path
from webapp.studio.access import owned_search
from webapp.studio.models import Search
from webapp.studio.tasks import engine_config

CANDIDATE = re.compile(r"^(?:full-)?(trial-(\d+)|baseline-(espcn|fsrcnn))$")


def card_metrics(search: Search, candidate: str) -> dict:
    """What the search measured for this candidate, for the model card."""
    match = CANDIDATE.match(candidate)
    assert match is not None
    extra: dict = {"search": search.pk, "clip": search.clip.original_name,
                   "task": search.config["task"], "budget": search.config["budget"]}
    if match.group(2) is not None:
        trial = search.trials.filter(number=int(match.group(2))).first()
        if trial is not None:
            extra.update(psnr=trial.psnr, ssim=trial.ssim, steps=trial.steps,
                         train_seconds=trial.train_seconds, proxy_latency_ms=trial.latency_ms)
    else:
        name = match.group(3)
        extra.update(next((b for b in search.baselines if b["name"] == name), {}))
        extra.pop("per_frame_psnr", None)
    return extra


@login_required
@require_GET
def model_bundle(request: HttpRequest, search_id: int, candidate: str) -> HttpResponse:
    search = owned_search(request.user, search_id)
    if not CANDIDATE.match(candidate):
        raise Http404("no such candidate")
    config = engine_config(search)
    checkpoint = checkpoint_path(config.out_dir, candidate)
    if not checkpoint.is_file():
        raise Http404(f"{candidate} has no trained weights")
    bundle = Path(config.out_dir) / "exports" / f"{candidate}.zip"
    if not bundle.is_file() or bundle.stat().st_mtime < checkpoint.stat().st_mtime:
        try:
            export_bundle(checkpoint, bundle, task_name=config.task, clip=Path(config.clip),
                          clip_name=search.clip.original_name,
                          resolution=tuple(config.resolution),
                          card_extra=card_metrics(search, candidate))
        except ExportError as error:
            return HttpResponse(f"export failed: {public_message(error)}", status=500,
                                content_type="text/plain")
        except OSError as error:
            if not is_disk_full(error):
                raise
            log_disk_full(f"export of {candidate} of search {search.pk}", error)
            return HttpResponse(f"export failed: {DISK_FULL_MESSAGE}", status=507,
                                content_type="text/plain")
    name = f"{search.config['task']}-{candidate}-search{search.pk}.zip"
    return FileResponse(bundle.open("rb"), as_attachment=True, filename=name,
                        content_type="application/zip")
