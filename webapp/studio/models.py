"""Clips, searches and their trials. Every row belongs to a user; `to_dict()` feeds both the
JSON endpoints and the WebSocket messages, so the two never disagree."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models

from engine.config import SearchConfig


def search_plan(config: dict[str, Any]) -> tuple[list[int], list[int]]:
    """(steps of each rung, evaluations planned at each rung) of a stored config. One the
    engine refuses reads as one rung of its budget: its search fails visibly when it runs,
    and pages that show it must still render."""
    try:
        engine = SearchConfig.from_dict({**config, "clip": "x"})
    except (TypeError, ValueError):  # ConfigError is a ValueError
        steps = int((config.get("budget") or {}).get("steps", 0))
        return [steps], [int(config.get("n_trials", 0))]
    return list(engine.rung_steps), engine.planned_evaluations


def clip_upload_path(clip: Clip, filename: str) -> str:
    # Never the user's file name on disk: a random name in the owner's folder.
    suffix = Path(filename).suffix.lower()
    suffix = suffix if suffix[1:].isalnum() and len(suffix) <= 6 else ".bin"
    return f"clips/{clip.owner_id}/{uuid.uuid4().hex}{suffix}"


class Clip(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="clips")
    file = models.FileField(upload_to=clip_upload_path, max_length=255)
    thumbnail = models.FileField(upload_to="thumbs/", max_length=255, blank=True)
    original_name = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField()
    content_hash = models.CharField(max_length=64)
    codec = models.CharField(max_length=16)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    fps = models.FloatField()
    frame_count = models.PositiveIntegerField()
    duration_s = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.original_name

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.pk, "name": self.original_name, "size_bytes": self.size_bytes,
            "codec": self.codec, "width": self.width, "height": self.height, "fps": self.fps,
            "frame_count": self.frame_count, "duration_s": self.duration_s,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


class Search(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        FINISHED = "finished"
        FAILED = "failed"
        CANCELLED = "cancelled"
        INTERRUPTED = "interrupted"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="searches")
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="searches")
    name = models.CharField(max_length=120, blank=True)
    config = models.JSONField()  # engine SearchConfig.to_dict() (clip path filled by tasks)
    workers = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    study_name = models.CharField(max_length=200, blank=True)
    baselines = models.JSONField(default=list, blank=True)
    report = models.JSONField(null=True, blank=True)
    finished_trials = models.PositiveIntegerField(default=0)  # first-rung candidates counted
    # Evaluations over all rungs (a candidate's first rung and each promotion): the unit of
    # progress and ETA, from the engine's search_started / trial_finished events.
    evaluations_done = models.PositiveIntegerField(default=0)
    evaluations_planned = models.PositiveIntegerField(default=0)
    device = models.CharField(max_length=16, blank=True)  # where the last worker trained
    event_seq = models.PositiveBigIntegerField(default=0)  # last event's sequence number
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Last sign of life of a worker running this search (webapp.studio.watchdog): a running
    # search whose beat is stale has lost its workers and is taken up again automatically.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "searches"

    def __str__(self) -> str:
        return self.name or f"search {self.pk}"

    @property
    def n_trials(self) -> int:
        return int(self.config["n_trials"])

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def group_name(self) -> str:
        return f"search-{self.pk}"

    def to_dict(self) -> dict[str, Any]:
        from webapp.studio.queue_position import search_place  # it imports this module

        rung_steps, plan = search_plan(self.config)
        return {
            "id": self.pk, "name": str(self), "clip": self.clip_id, "config": self.config,
            "workers": self.workers, "status": self.status,
            "cancel_requested": self.cancel_requested, "error": self.error,
            "n_trials": self.n_trials, "finished_trials": self.finished_trials,
            # Progress counts evaluations over all rungs: done, and planned (the engine's
            # count once a worker announced it, else what the config implies).
            "evaluations_done": self.evaluations_done,
            "evaluations_planned": self.evaluations_planned or sum(plan),
            "rung_steps": rung_steps, "rung_plan": plan, "top_rung": len(rung_steps) - 1,
            "device": self.device,
            "baselines": self.baselines, "seq": self.event_seq,
            "hypervolume": (self.report or {}).get("hypervolume"),
            # False while work is left (a cancelled search); None before any report.
            "complete": (self.report or {}).get("complete"),
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "queue": search_place(self),  # None unless it waits for a worker
        }


class Trial(models.Model):
    """One candidate of a search, keyed by (search, number): `number` is the candidate's
    first Optuna trial; its promotions to longer rungs update the same row (the engine's
    candidate record, engine.search.report.candidate_records)."""

    search = models.ForeignKey(Search, on_delete=models.CASCADE, related_name="trials")
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=16)
    arch = models.CharField(max_length=255, blank=True)
    genome = models.JSONField(null=True, blank=True)
    psnr = models.FloatField(null=True, blank=True)
    ssim = models.FloatField(null=True, blank=True)
    macs = models.BigIntegerField(null=True, blank=True)
    params = models.BigIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    steps = models.PositiveIntegerField(null=True, blank=True)
    train_seconds = models.FloatField(null=True, blank=True)
    on_front = models.BooleanField(default=False)  # on the engine's top-rung front
    rung = models.PositiveSmallIntegerField(default=0)  # highest rung completed
    # Per completed rung: {rung, trial, steps, psnr, ssim, train_seconds} ({rung, failed}
    # for a promotion whose training diverged).
    rungs = models.JSONField(default=list, blank=True)
    promoting = models.PositiveSmallIntegerField(null=True, blank=True)  # rung under way
    below_reference = models.BooleanField(default=False)  # psnr <= the no-learning reference
    reason = models.TextField(blank=True)
    seq = models.PositiveBigIntegerField(default=0)  # event that last changed this row
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["search", "number"],
                                               name="unique_trial_number")]

    # What the live page's table and chart show of a trial: `to_dict(genome=False)`, which
    # `Trial.objects.values(*Trial.ROW_FIELDS)` also reads (no model instances) for big searches.
    ROW_FIELDS = ("number", "state", "arch", "psnr", "ssim", "macs", "params", "latency_ms",
                  "steps", "train_seconds", "on_front", "rung", "rungs", "promoting",
                  "below_reference", "reason", "seq")

    def to_dict(self, genome: bool = True) -> dict[str, Any]:
        """The row as JSON. `genome=False` is the slim row (ROW_FIELDS): the genome, the bulk
        of a row, is read on demand when a trial's detail opens on the live page."""
        row = {name: getattr(self, name) for name in self.ROW_FIELDS}
        if genome:
            row["genome"] = self.genome
        return row


class SearchEvent(models.Model):
    """The per-search event sequence: `?after=N` pages through it, reconnects replay it."""

    search = models.ForeignKey(Search, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=32)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]
        constraints = [models.UniqueConstraint(fields=["search", "seq"],
                                               name="unique_event_seq")]

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, **self.payload}


class Preview(models.Model):
    """A before/after render of one candidate (a trial or a learned baseline) on its clip."""

    class Mode(models.TextChoices):
        MEASURED = "measured"  # degrade the clip, restore it, score every frame
        APPLY = "apply"  # enhance the clip as it is (visual only)

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        READY = "ready"
        FAILED = "failed"
        CANCELLED = "cancelled"

    search = models.ForeignKey(Search, on_delete=models.CASCADE, related_name="previews")
    candidate = models.CharField(max_length=64)  # "trial-12" or "baseline-espcn"
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.MEASURED)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    cancel_requested = models.BooleanField(default=False)  # checked between frames
    # Last frame rendered (webapp.studio.watchdog): a running preview silent for long lost
    # its worker and is queued again.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    frames_done = models.PositiveIntegerField(default=0)
    frames_total = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)  # engine render_preview's summary
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    @property
    def folder(self) -> Path:
        return Path(settings.MEDIA_ROOT) / "searches" / str(self.search_id) / "previews" / str(
            self.pk)

    def to_dict(self) -> dict[str, Any]:
        from webapp.studio.queue_position import preview_place  # it imports this module

        return {"id": self.pk, "search": self.search_id, "candidate": self.candidate,
                "mode": self.mode, "status": self.status, "frames_done": self.frames_done,
                "frames_total": self.frames_total, "result": self.result, "error": self.error,
                "cancel_requested": self.cancel_requested, "queue": preview_place(self)}


class Invite(models.Model):
    """A one-use sign-up link for an invite-only studio (settings.STUDIO_SIGNUP): an admin
    makes it (`manage.py studio_invite` or the admin site) and sends the link."""

    code = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="invites_made")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_by = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="invite")
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"invite {self.code[:8]}… ({'used' if self.used_by_id else 'open'})"
