"""The web app's ProgressSink: persist each engine event, then broadcast it.

Persist first, so a client that reconnects (snapshot + `?after=N`) never misses what a
broadcast carried. Trial rows are an idempotent copy of the engine's candidate records, keyed
by (search, candidate number): a promotion to a longer rung updates its candidate's row.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from engine.events import (
    BaselineFinished,
    BaselineProgress,
    Event,
    SearchFinished,
    SearchStarted,
    TrainingProgress,
    TrialFinished,
    TrialStarted,
)
from webapp.studio.broadcast import group_send
from webapp.studio.models import Search, SearchEvent, Trial
from webapp.studio.transient import retrying
from webapp.studio.watchdog import beat

TRIAL_FIELDS = ("state", "arch", "genome", "psnr", "ssim", "macs", "params", "latency_ms",
                "steps", "train_seconds", "rung", "rungs", "promoting")


def reference_psnr(baselines: list[dict[str, Any]]) -> float | None:
    """The no-learning reference (bicubic, or the degraded input itself): the engine's
    baselines[0], the one row neither learned nor pretrained."""
    for row in baselines:
        if not row.get("learned") and not row.get("pretrained"):
            return row.get("psnr")
    return None


def trial_defaults(record: dict[str, Any], reference: float | None = None) -> dict[str, Any]:
    """A row's values from an engine candidate record. A candidate whose promotion is under
    way (or queued) reads 'running', its last completed rung's results kept."""
    from engine.search.report import above_reference

    values = {key: record.get(key) for key in TRIAL_FIELDS}
    values["arch"] = values["arch"] or ""
    values["rung"] = values["rung"] or 0
    values["rungs"] = values["rungs"] or []
    values["reason"] = record.get("reason", "")
    if values["latency_ms"] is not None and values["latency_ms"] == float("inf"):
        values["latency_ms"] = None
    if values["promoting"] is not None:
        values["state"] = "running"
    # Scored and not above the reference: flagged, never on a front (no score: no flag).
    values["below_reference"] = (reference is not None and record.get("psnr") is not None
                                 and not above_reference(record, reference))
    return values


def record_event(search_id: int, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Append an event to the search's sequence (and update rows); returns the message.
    A database restart meanwhile is waited out (retried with backoff), never a failure."""
    return retrying(lambda: _record_event(search_id, kind, payload),
                    f"search {search_id}: recording {kind}")


def _record_event(search_id: int, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
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
        # Running from now, and alive now: the watchdog counts silence from here, not from
        # a beat before the (possibly long) preparation.
        changes: dict[str, Any] = {"status": Search.Status.RUNNING,
                                   "study_name": payload["study_name"],
                                   "started_at": search.started_at or now, "heartbeat_at": now}
        if payload.get("evaluations_planned"):
            changes["evaluations_planned"] = payload["evaluations_planned"]
        if payload.get("device"):
            changes["device"] = payload["device"]
        Search.objects.filter(pk=search.pk).update(**changes)
    elif kind == "baseline_finished":
        baselines = [b for b in search.baselines if b["name"] != payload["baseline"]["name"]]
        Search.objects.filter(pk=search.pk).update(baselines=baselines + [payload["baseline"]])
    elif kind == "trial_started":
        start_trial(search, payload, seq)
    elif kind == "trial_finished":
        finish_trial(search, payload, seq)


def start_trial(search: Search, payload: dict[str, Any], seq: int) -> None:
    """A candidate's first rung creates its row; a promotion (rung > 0) sets the same row
    back to running, with `promoting` the rung under way and its last results kept."""
    rung = int(payload.get("rung", 0))
    values = {"state": "running", "genome": payload["genome"],
              "arch": payload["genome"].get("key", ""), "macs": payload["macs"], "seq": seq,
              "promoting": rung or None}
    if rung == 0:
        values["rung"] = 0
    Trial.objects.update_or_create(search=search, number=payload["number"], defaults=values)


def finish_trial(search: Search, payload: dict[str, Any], seq: int) -> None:
    record = payload["trial"]
    values = trial_defaults(record, reference_psnr(search.baselines))
    row = search.trials.filter(number=record["number"]).first()
    rung = int(payload.get("rung", record.get("rung") or 0))
    if (row is not None and row.promoting is not None and row.promoting > rung
            and values["promoting"] is None):
        # Another worker's promotion of this candidate started before this (lower) rung's
        # end reached us: the row stays running at that rung.
        values.update(state="running", promoting=row.promoting)
    Trial.objects.update_or_create(search=search, number=record["number"],
                                   defaults={**values, "seq": seq})
    if "front" in payload:  # the engine's list (TrialFinished always carries it)
        front = set(payload["front"]) | ({record["number"]} if payload["on_front"] else set())
        refresh_front(search, sorted(front), seq)
    else:  # a hand-made event without the list: this row's own flag only
        Trial.objects.filter(search=search, number=record["number"]).update(
            on_front=payload["on_front"])
    progress: dict[str, Any] = {"finished_trials": payload["finished"]}
    if payload.get("evaluations_planned"):
        # Workers' events can cross: a count never goes back.
        progress.update(evaluations_done=Greatest(F("evaluations_done"),
                                                  payload["evaluations_done"]),
                        evaluations_planned=payload["evaluations_planned"])
    Search.objects.filter(pk=search.pk).update(**progress)


def refresh_front(search: Search, front: list[int], seq: int) -> None:
    """on_front of every row from the engine's top-rung front (only the engine computes it:
    the verdict pool is the top rung, above the reference). Rows whose flag changes take the
    event's seq, so a partial snapshot (`?after=N`) carries them."""
    rows = Trial.objects.filter(search=search)
    rows.filter(on_front=True).exclude(number__in=front).update(on_front=False, seq=seq)
    rows.filter(number__in=front, on_front=False).update(on_front=True, seq=seq)


class StudioSink:
    """Persists then broadcasts every engine event of one search."""

    def __init__(self, search_id: int) -> None:
        self.search_id = search_id
        self.group = f"search-{search_id}"
        self.n_finished: int | None = None  # the engine's count when the run ended

    def emit(self, event: Event) -> None:
        beat(self.search_id)  # any event is a sign of life (rate-limited)
        if isinstance(event, SearchFinished):
            self.n_finished = event.n_finished
        payload = event.to_dict()
        kind = payload.pop("kind")
        if isinstance(event, (TrainingProgress, BaselineProgress)):
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
