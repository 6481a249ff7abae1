"""How a worker's end settles its search (tasks.finish), against a real Optuna RDB study:
the engine says whether work is left (`report["complete"]`), the last worker to end finishes
the search, work a killed worker left is taken up by a follow-up worker, the engine's count
is the count, and a killed worker's trial (or promotion) does not stay 'running'."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from django.contrib.auth.models import User
from pytest_django.fixtures import Settings

from engine.config import SearchConfig
from engine.search.search import counted_trials
from engine.search.study import GRACE_SECONDS, make_storage
from webapp.studio import tasks
from webapp.studio.models import Clip, Search, Trial

pytestmark = [pytest.mark.django_db,
              pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")]
# `trained_trials` deliberately wrong: `counted` must win.
REPORT = {"timing": {"trained_trials": 99}, "complete": True}
WORK_LEFT = {**REPORT, "complete": False}


@pytest.fixture
def storage_url(settings: Settings, tmp_path: Path) -> str:
    settings.STUDIO_OPTUNA_STORAGE = f"sqlite:///{tmp_path / 'optuna.sqlite3'}"
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.STUDIO_OPTUNA_STORAGE


def make_search(n_trials: int, workers: int = 1, **fields: object) -> Search:
    owner = User.objects.create_user(f"u{User.objects.count()}", password="x" * 12)
    clip = Clip.objects.create(owner=owner, file="clips/1/x.mp4", original_name="x.mp4",
                               size_bytes=1, content_hash="0" * 64, codec="avc1", width=64,
                               height=64, fps=25.0, frame_count=10, duration_s=0.4)
    config = SearchConfig(clip="x", n_trials=n_trials).to_dict()
    return Search.objects.create(owner=owner, clip=clip, config=config, workers=workers,
                                 status=Search.Status.RUNNING, **fields)


def make_study(search: Search, url: str, states: list[str]) -> optuna.Study:
    """Trials in order: 'counted' (trained and told), 'running' (asked, never told)."""
    study = optuna.create_study(storage=make_storage(url),
                                study_name=tasks.engine_config(search).study_name,
                                directions=["maximize", "minimize"])
    for number, state in enumerate(states):
        trial = study.ask()
        Trial.objects.create(search=search, number=number,
                             state="running" if state == "running" else "complete")
        if state == "counted":
            trial.set_user_attr("counted", True)
            study.tell(trial, [30.0 + number, 1000.0])
    return study


def test_a_killed_workers_trial_is_settled_when_the_search_ends(storage_url: str) -> None:
    search = make_search(n_trials=2)
    study = make_study(search, storage_url, ["counted", "running", "counted"])
    tasks.finish(search.pk, REPORT, counted=counted_trials(study))
    search.refresh_from_db()
    assert (search.status, search.finished_trials) == ("finished", 2)
    assert search.finished_at is not None
    orphan = search.trials.get(number=1)
    assert orphan.state == "failed" and "stopped mid-trial" in orphan.reason
    assert list(search.events.values_list("kind", "payload__finished")) == [("search_done", 2)]
    # Optuna keeps it RUNNING until its grace period passes; it never counts either way.
    assert study.trials[1].state == optuna.trial.TrialState.RUNNING
    assert counted_trials(study) == 2


def test_with_several_workers_a_running_trial_may_be_anothers(storage_url: str) -> None:
    search = make_search(n_trials=1, workers=2)
    make_study(search, storage_url, ["counted", "running"])
    tasks.finish(search.pk, REPORT, counted=1)
    search.refresh_from_db()
    assert search.status == "finished"
    assert search.trials.get(number=1).state == "running"  # its own trial_finished settles it


def test_a_search_whose_proposals_ran_out_ends(storage_url: str) -> None:
    search = make_search(n_trials=3)
    make_study(search, storage_url, ["counted"])
    tasks.finish(search.pk, REPORT, counted=1)
    search.refresh_from_db()
    assert (search.status, search.finished_trials) == ("finished", 1)
    event = search.events.get()
    assert event.kind == "search_done" and "ran out" in event.payload["reason"]


@pytest.fixture
def follow_ups(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple, int]]:
    """search_worker.apply_async recorded (no broker here): (args, countdown)."""
    calls: list[tuple[tuple, int]] = []
    monkeypatch.setattr(tasks.search_worker, "apply_async",
                        lambda args, countdown: calls.append((args, countdown)))
    return calls


def test_work_left_while_another_worker_still_trains_stays_running(
        storage_url: str, follow_ups: list) -> None:
    """A worker that ran out of jobs while another still promotes: the other finishes it."""
    search = make_search(n_trials=3, workers=2)
    make_study(search, storage_url, ["counted", "running"])
    tasks.finish(search.pk, WORK_LEFT, counted=1)
    search.refresh_from_db()
    assert (search.status, search.finished_at) == ("running", None)
    assert search.finished_trials == 1 and not search.events.exists()
    assert search.report == WORK_LEFT and follow_ups == []
    # The last worker's report says the work is done: now it is finished, once.
    tasks.finish(search.pk, REPORT, counted=3)
    search.refresh_from_db()
    assert (search.status, search.finished_trials) == ("finished", 3)
    tasks.finish(search.pk, {**REPORT, "hypervolume": 1.0}, counted=3)  # a straggler
    search.refresh_from_db()
    assert search.report["hypervolume"] == 1.0  # the newer complete report is kept ...
    assert list(search.events.values_list("kind", flat=True)) == ["search_done"]  # ... once


def test_work_left_by_a_killed_worker_gets_a_follow_up_worker(
        storage_url: str, follow_ups: list) -> None:
    """One worker, and Optuna still holds a dead worker's trial (its grace period not over):
    the search stays running and a worker is queued for when Optuna frees that trial."""
    search = make_search(n_trials=3)
    make_study(search, storage_url, ["counted", "running"])
    tasks.finish(search.pk, WORK_LEFT, counted=1, worker=0)
    search.refresh_from_db()
    assert search.status == "running" and not search.events.exists()
    assert follow_ups == [((search.pk, 0, 1), tasks.FOLLOW_UP_S)]
    assert tasks.FOLLOW_UP_S > GRACE_SECONDS
    # A follow-up that still finds work left queues the next; after the last, the search
    # reads interrupted (resumable), and its orphan is settled.
    tasks.finish(search.pk, WORK_LEFT, counted=1, follow_up=tasks.MAX_FOLLOW_UPS)
    search.refresh_from_db()
    assert search.status == "interrupted" and "resume it" in search.error
    assert len(follow_ups) == 1
    assert search.trials.get(number=1).state == "failed"
    assert list(search.events.values_list("kind", flat=True)) == ["search_interrupted"]


def test_work_left_after_a_cancel_is_cancelled(storage_url: str, follow_ups: list) -> None:
    search = make_search(n_trials=3, cancel_requested=True)
    make_study(search, storage_url, ["counted"])
    tasks.finish(search.pk, WORK_LEFT, counted=1)
    search.refresh_from_db()
    assert search.status == "cancelled" and follow_ups == []
    assert list(search.events.values_list("kind", flat=True)) == ["search_cancelled"]


def test_a_killed_promotion_leaves_its_candidate_at_its_last_rung(storage_url: str) -> None:
    """The candidate's row read 'running' (its promotion under way) when the worker died:
    it goes back to its completed rung, not to 'failed'."""
    search = make_search(n_trials=1)
    study = optuna.create_study(storage=make_storage(storage_url),
                                study_name=tasks.engine_config(search).study_name,
                                directions=["maximize", "minimize"])
    first = study.ask()  # candidate 0, trained on rung 0 (as engine.search.evaluation)
    for key, value in {"rung": 0, "candidate": 0, "outcome": "trained", "counted": True,
                       "result": {"psnr": 31.0, "ssim": 0.9, "macs": 1000, "steps": 300,
                                  "train_seconds": 1.0}}.items():
        first.set_user_attr(key, value)
    study.tell(first, [31.0, 1000.0])
    study.enqueue_trial({}, user_attrs={"candidate": 0, "rung": 1})
    study.ask()  # its promotion, RUNNING when the worker died
    Trial.objects.create(search=search, number=0, state="running", psnr=31.0, rung=0,
                         promoting=1, rungs=[{"rung": 0, "trial": 0, "steps": 300,
                                              "psnr": 31.0}])
    tasks.finish(search.pk, REPORT, counted=counted_trials(study))
    row = search.trials.get(number=0)
    assert (row.state, row.rung, row.promoting, row.psnr) == ("complete", 0, None, 31.0)
