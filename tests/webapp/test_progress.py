"""The progress sink against multi-fidelity searches: one row per candidate (a promotion to a
longer rung updates its candidate's row), on_front from the engine's top-rung front, rows at
or below the no-learning reference flagged, progress counted in evaluations over all rungs;
first with a real tiny search (rungs 20 -> 40 -> 80 steps), then event by event."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from engine.config import Rungs, TrainBudget
from engine.events import BaselineProgress, TrainingProgress
from engine.search.search import run_search
from webapp.studio import tasks
from webapp.studio.models import Clip, Search
from webapp.studio.progress import StudioSink, record_event

pytestmark = pytest.mark.django_db
TINY_RUNGS = Rungs(min_steps=20, max_steps=80, eta=2)
GENOME = {"key": "w8_conv3_relu+res"}
REFERENCE = {"name": "bicubic", "learned": False, "psnr": 30.0}
IMDN = {"name": "imdn", "learned": False, "pretrained": True, "psnr": 40.0}


@pytest.fixture
def search(user: User, make_clip: Callable[..., Clip],
           make_search: Callable[..., Search]) -> Search:
    search = make_search(make_clip(user), rungs=TINY_RUNGS)
    Search.objects.filter(pk=search.pk).update(baselines=[REFERENCE, IMDN])
    search.refresh_from_db()
    return search


@pytest.mark.slow
def test_a_real_search_keeps_one_row_per_candidate(
        client_in: Client, user: User, make_clip: Callable[..., Clip],
        make_search: Callable[..., Search], settings: Settings) -> None:
    search = make_search(make_clip(user), n_trials=4, rungs=TINY_RUNGS, n_frames=4,
                         resolution=(320, 180), budget=TrainBudget(batch_size=4, patch_size=16))
    sink = StudioSink(search.pk)
    report = run_search(tasks.engine_config(search), sink, settings.STUDIO_CACHE_DIR)
    tasks.finish(search.pk, report, sink.n_finished)
    search.refresh_from_db()
    assert search.status == "finished" and report["complete"] is True

    rows = {row.number: row for row in search.trials.all()}
    assert set(rows) == {t["number"] for t in report["trials"]}  # candidates, not trials
    for record in report["trials"]:
        row = rows[record["number"]]
        assert (row.state, row.rung, row.promoting) == (record["state"], record["rung"], None)
        assert row.rungs == record["rungs"] and row.psnr == record["psnr"]
        assert row.below_reference == record["below_reference"]
    # A promoted candidate started each rung in its own row: rung 0, 1, then 2.
    top = [t for t in report["trials"] if t["rung"] == 2]
    assert top, report["trials"]
    started = search.events.filter(kind="trial_started", payload__number=top[0]["number"])
    assert [e.payload["rung"] for e in started] == [0, 1, 2]
    assert [r["steps"] for r in rows[top[0]["number"]].rungs] == [20, 40, 80]
    # The front is the engine's (top rung, above the reference), never recomputed here.
    assert {n for n, row in rows.items() if row.on_front} == {
        t["number"] for t in report["pareto_front"]}
    # Progress counts evaluations over every rung: 4 -> 3 -> 3 planned (the two baseline
    # seeds are anchors that reach the top rung; of the two others, one moves up).
    assert search.evaluations_planned == 10
    assert search.evaluations_done == sum(report["timing"]["evaluations_per_rung"]) == 10
    assert search.finished_trials == 4
    body = search.to_dict()
    assert (body["rung_steps"], body["rung_plan"], body["top_rung"]) == ([20, 40, 80],
                                                                         [4, 3, 3], 2)
    assert body["evaluations_done"] == body["evaluations_planned"] == 10
    assert body["complete"] is True and body["device"] == report["device"]
    page = client_in.get(reverse("studio:search_detail", args=[search.pk]))
    progress = page.context["progress"]
    assert progress["done_per_rung"] == progress["planned_per_rung"] == [4, 3, 3]
    assert all(seconds > 0 for seconds in progress["mean_seconds_per_rung"])


def candidate(number: int, rung: int, psnr: float | None, **extra: Any) -> dict[str, Any]:
    """An engine candidate record (engine.search.report.candidate_records) at `rung`."""
    rungs = [{"rung": k, "trial": number + 10 * k, "steps": 20 * 2**k, "psnr": psnr,
              "ssim": 0.9, "train_seconds": 0.1} for k in range(rung + 1)]
    return {"number": number, "genome": GENOME, "arch": GENOME["key"], "state": "complete",
            "psnr": psnr, "ssim": 0.9, "macs": 1000 + number, "params": 100,
            "latency_ms": None, "steps": 20 * 2**rung, "train_seconds": 0.1, "rung": rung,
            "rungs": rungs, "promoting": None, **extra}


def started(search: Search, number: int, rung: int = 0) -> dict[str, Any]:
    return record_event(search.pk, "trial_started", {"number": number, "genome": GENOME,
                                                     "macs": 1000 + number, "rung": rung,
                                                     "steps": 20 * 2**rung, "at": 1.0})


def finished(search: Search, record: dict[str, Any], front: list[int],
             done: int = 1) -> dict[str, Any]:
    return record_event(search.pk, "trial_finished", {
        "trial": record, "finished": 1, "n_trials": 3, "on_front": record["number"] in front,
        "counted": record["rung"] == 0, "rung": record["rung"], "evaluations_done": done,
        "evaluations_planned": 6, "front": front, "at": 1.0})


def test_a_promotion_updates_its_candidates_row(search: Search) -> None:
    started(search, 0)
    finished(search, candidate(0, 0, 31.0), front=[])
    started(search, 0, rung=1)
    row = search.trials.get()
    # Running again, promoting to rung 1, its rung-0 results kept until rung 1 ends.
    assert (row.state, row.rung, row.promoting, row.psnr) == ("running", 0, 1, 31.0)
    assert row.to_dict(genome=False)["promoting"] == 1
    finished(search, candidate(0, 1, 32.0), front=[0], done=2)
    row = search.trials.get()
    assert (row.state, row.rung, row.promoting, row.psnr, row.steps) == (
        "complete", 1, None, 32.0, 40)
    assert [r["rung"] for r in row.rungs] == [0, 1] and row.on_front
    search.refresh_from_db()
    assert (search.evaluations_done, search.evaluations_planned) == (2, 6)


def test_a_later_rungs_start_is_not_undone_by_an_earlier_rungs_end(search: Search) -> None:
    """Two workers: one starts rung 2 of a candidate before the other's rung-1 end is
    recorded; the row stays running at rung 2."""
    started(search, 0)
    started(search, 0, rung=2)
    finished(search, candidate(0, 1, 32.0), front=[])
    row = search.trials.get()
    assert (row.state, row.rung, row.promoting) == ("running", 1, 2)


def test_on_front_is_the_engines_list_for_every_row(search: Search) -> None:
    for number, psnr in ((0, 31.0), (1, 32.0), (2, 33.0)):
        started(search, number)
        finished(search, candidate(number, 0, psnr), front=[])
    # A candidate at the top rung: the engine's front now holds it alone.
    message = finished(search, candidate(1, 2, 33.5), front=[1])
    assert {t.number for t in search.trials.filter(on_front=True)} == {1}
    # Another joins: both on it; when one drops off, its row changes and takes the seq.
    finished(search, candidate(2, 2, 34.0), front=[1, 2])
    message = finished(search, candidate(0, 2, 35.0), front=[0])
    rows = {t.number: t for t in search.trials.all()}
    assert [rows[n].on_front for n in (0, 1, 2)] == [True, False, False]
    assert rows[1].seq == rows[2].seq == message["seq"]  # a partial snapshot carries them


def test_rows_at_or_below_the_reference_are_flagged(search: Search) -> None:
    """The reference is the no-learning row (not IMDN's, which is pretrained)."""
    for number, psnr in ((0, 29.5), (1, 30.0), (2, 30.5)):
        finished(search, candidate(number, 0, psnr), front=[])
    finished(search, {**candidate(3, 0, None), "state": "failed", "rungs": []}, front=[])
    flags = dict(search.trials.values_list("number", "below_reference"))
    assert flags == {0: True, 1: True, 2: False, 3: False}


def test_training_and_baseline_progress_are_broadcast_only(search: Search) -> None:
    sink = StudioSink(search.pk)
    sink.emit(TrainingProgress(number=0, step=25, steps=80, loss=0.1))
    sink.emit(BaselineProgress(name="espcn", step=25, steps=80))
    search.refresh_from_db()
    assert search.event_seq == 0 and not search.events.exists()
