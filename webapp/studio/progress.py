"""The web app's ProgressSink: persist each engine event, then broadcast it.

Persist first, so a client that reconnects (snapshot + `?after=N`) never misses what a
broadcast carried. Trial rows are an idempotent copy keyed by (search, number).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from engine.events import (
    BaselineFinished,
    Event,
    SearchFinished,
    SearchStarted,
    TrainingProgress,
    TrialFinished,
    TrialStarted,
)
from webapp.studio.broadcast import group_send
from webapp.studio.models import Search, SearchEvent, Trial

TRIAL_FIELDS = ("state", "arch", "genome", "psnr", "ssim", "macs", "params", "latency_ms",
                "steps", "train_seconds")


def trial_defaults(record: dict[str, Any]) -> dict[str, Any]:
    values = {key: record.get(key) for key in TRIAL_FIELDS}
    values["arch"] = values["arch"] or ""
    values["reason"] = record.get("reason", "")
    if values["latency_ms"] is not None and values["latency_ms"] == float("inf"):
        values["latency_ms"] = None
    return values


def record_event(search_id: int, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Append an event to the search's sequence (and update rows); returns the message."""
    with transaction.atomic():
        Search.objects.filter(pk=search_id).update(event_seq=F("event_seq") + 1)
        search = Search.objects.get(pk=search_id)
        seq = search.event_seq
        SearchEvent.objects.create(search=search, seq=seq, kind=kind, payload=payload)
        apply_event(search, kind, payload, seq)
    return {"seq": seq, "kind": kind, **payload}


def apply_event(search: Search, kind: str, payload: dict[str, Any], seq: int) -> None:
    now = timezone.now()
    if kind == "search_started":
        Search.objects.filter(pk=search.pk).update(
            status=Search.Status.RUNNING, study_name=payload["study_name"],
            started_at=search.started_at or now)
    elif kind == "baseline_finished":
        baselines = [b for b in search.baselines if b["name"] != payload["baseline"]["name"]]
        Search.objects.filter(pk=search.pk).update(baselines=baselines + [payload["baseline"]])
    elif kind == "trial_started":
        Trial.objects.update_or_create(
            search=search, number=payload["number"],
            defaults={"state": "running", "genome": payload["genome"],
                      "arch": payload["genome"].get("key", ""), "macs": payload["macs"],
                      "seq": seq})
    elif kind == "trial_finished":
        record = payload["trial"]
        Trial.objects.update_or_create(
            search=search, number=record["number"],
            defaults={**trial_defaults(record), "on_front": payload["on_front"], "seq": seq})
        if payload["on_front"]:  # the front moved: older points it now dominates drop off
            refresh_front(search)
        Search.objects.filter(pk=search.pk).update(finished_trials=payload["finished"])


def refresh_front(search: Search) -> None:
    from engine.search.report import front_of

    trials = list(search.trials.all())
    records = [t.to_dict() for t in trials]
    cost = search.config["objectives"][1]
    front = {r["number"] for r in front_of([r for r in records if r["macs"] is not None], cost)}
    for trial in trials:
        if trial.on_front != (trial.number in front):
            Trial.objects.filter(pk=trial.pk).update(on_front=trial.number in front)


class StudioSink:
    """Persists then broadcasts every engine event of one search."""

    def __init__(self, search_id: int) -> None:
        self.search_id = search_id
        self.group = f"search-{search_id}"
        self.n_finished: int | None = None  # the engine's count when the run ended

    def emit(self, event: Event) -> None:
        if isinstance(event, SearchFinished):
            self.n_finished = event.n_finished
        payload = event.to_dict()
        kind = payload.pop("kind")
        if isinstance(event, TrainingProgress):
            # Frequent and transient: broadcast only (a reload shows the finished trials).
            group_send(self.group, {"type": "search.event",
                                    "event": {"seq": None, "kind": kind, **payload}})
            return
        if not isinstance(event, (SearchStarted, BaselineFinished, TrialStarted, TrialFinished,
                                  SearchFinished)):
            return
        message = record_event(self.search_id, kind, payload)
        group_send(self.group, {"type": "search.event", "event": message})


def announce(search_id: int, kind: str, payload: dict[str, Any]) -> None:
    """A studio-side event (cancelled, failed, finished...) in the same sequence."""
    message = record_event(search_id, kind, payload)
    group_send(f"search-{search_id}", {"type": "search.event", "event": message})
