"""The comparison page: one reference (the original or the bicubic "before") against N ready,
measured previews of one search, drawn frame-accurately on canvases by static/studio/compare.js
(wipe, side by side, difference), with a synced playhead, zoom and pan."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from webapp.studio.access import owned_search
from webapp.studio.models import Preview

MODES = ("wipe", "side", "diff")
REFS = ("original", "bicubic")


def _ids(raw: str) -> list[int]:
    ids: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        if part.isdigit() and int(part) not in ids:
            ids.append(int(part))
    return ids


def _preview_data(preview: Preview) -> dict[str, Any]:
    result = preview.result or {}

    def url(name: str) -> str:
        return reverse("studio:preview_file", args=[preview.pk, name])

    per_frame = [{k: f.get(k) for k in ("index", "psnr", "ssim", "baseline_psnr",
                                         "baseline_ssim")} for f in result.get("per_frame", [])]
    return {"id": preview.pk, "candidate": preview.candidate,
            "urls": {"output": url("output.mp4"), "bicubic": url("input.mp4"),
                     "original": url("reference.mp4"),
                     "detail": reverse("studio:preview_detail", args=[preview.pk])},
            "per_frame": per_frame, "worst_frame": result.get("worst_frame", 0),
            "fps": result.get("fps") or 25.0, "frames": result.get("frames") or len(per_frame),
            "width": result.get("width"), "height": result.get("height"),
            "psnr": result.get("psnr"), "baseline_psnr": result.get("baseline_psnr")}


@login_required
@require_GET
def compare_page(request: HttpRequest, search_id: int) -> HttpResponse:
    search = owned_search(request.user, search_id)
    ready = {p.pk: p for p in search.previews.filter(status=Preview.Status.READY,
                                                      mode=Preview.Mode.MEASURED)}
    wanted = _ids(request.GET.get("c", ""))
    chosen = [ready[i] for i in wanted if i in ready]
    if wanted and not chosen:
        raise Http404("none of these previews is a ready measured preview of this search")
    if not chosen:
        chosen = sorted(ready.values(), key=lambda p: p.pk)
    if not chosen:
        raise Http404("this search has no ready measured preview to compare")
    previews = [_preview_data(p) for p in chosen]
    return render(request, "studio/compare.html", {"search": search, "previews": previews})
