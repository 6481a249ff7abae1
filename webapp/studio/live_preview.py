"""Live previews during a search: when a trial joins the Pareto front, the worker renders a
small before/after crop of one held-out frame and pushes it to the search page."""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from engine.data.enhancement import make_task
from engine.data.frame_cache import FrameCache
from engine.deploy.render import render_crop
from engine.events import Event, TrialFinished
from engine.safe_files import is_disk_full, log_disk_full, write_bytes_atomic
from engine.train.checkpoint import checkpoint_path, load_checkpoint
from webapp.studio.access import owned_search
from webapp.studio.media import ranged_file_response
from webapp.studio.progress import StudioSink, announce

log = logging.getLogger(__name__)
CROP_SIDE = 64  # input pixels; the "after" is CROP_SIDE * scale


class LivePreviewSink(StudioSink):
    """StudioSink that also renders a before/after crop for each new Pareto-front trial."""

    def __init__(self, search_id: int, config) -> None:  # noqa: ANN001  # engine SearchConfig
        super().__init__(search_id)
        self.config = config

    def emit(self, event: Event) -> None:
        super().emit(event)
        if (isinstance(event, TrialFinished) and event.on_front
                and event.trial["state"] == "complete" and self.config.out_dir):
            try:
                self.crop(event.trial["number"])
            except Exception as error:  # a preview must never fail the search
                if is_disk_full(error):
                    log_disk_full(f"live preview of trial {event.trial['number']}", error)
                else:
                    log.exception("live preview of trial %s failed", event.trial["number"])

    def crop(self, number: int) -> None:
        config = self.config
        net, _ = load_checkpoint(checkpoint_path(config.out_dir, f"trial-{number}"))
        task = make_task(config.task, config.noise_sigma, config.jpeg_quality)
        frames = FrameCache(settings.STUDIO_CACHE_DIR).load(
            config.clip, config.n_frames, config.skip_near_duplicates)
        frame = frames.frames[-1]  # a held-out frame (the eval frames are the tail)
        side = min(CROP_SIDE, frame.shape[0] // task.scale, frame.shape[1] // task.scale)
        x = (frame.shape[1] // task.scale - side) // 2
        y = (frame.shape[0] // task.scale - side) // 2
        box = (x * task.scale, y * task.scale, side * task.scale, side * task.scale)
        before, after = render_crop(net, task, frame, box)
        folder = Path(config.out_dir) / "crops"
        # atomic: a full disk leaves no half PNG (the search goes on; the crop is skipped)
        write_bytes_atomic(folder / f"trial-{number}-before.png", before)
        write_bytes_atomic(folder / f"trial-{number}-after.png", after)
        urls = {side_: reverse("studio:crop_file", args=[self.search_id, number, side_])
                for side_ in ("before", "after")}
        announce(self.search_id, "front_preview", {"number": number, **urls})


@login_required
@require_GET
def crop_file(request: HttpRequest, search_id: int, number: int, side: str) -> HttpResponse:
    from webapp.studio.tasks import engine_config

    search = owned_search(request.user, search_id)
    if side not in ("before", "after"):
        raise Http404("no such crop")
    path = Path(engine_config(search).out_dir) / "crops" / f"trial-{number}-{side}.png"
    return ranged_file_response(request, path, "image/png")
