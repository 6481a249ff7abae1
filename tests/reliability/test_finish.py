"""How a worker's end settles its search (tasks.finish), against a real Optuna RDB study:
the engine's count decides, a killed worker's trial does not stay 'running', and a search
whose proposals ran out ends instead of reading 'running' forever."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from django.contrib.auth.models import User
from pytest_django.fixtures import Settings

from engine.config import SearchConfig
from engine.search.search import counted_trials
from engine.search.study import make_storage
from webapp.studio import tasks
from webapp.studio.models import Clip, Search, Trial

pytestmark = [pytest.mark.django_db,
              pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")]
REPORT = {"timing": {"trained_trials": 99}}  # deliberately wrong: `counted` must win


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


def test_short_while_another_worker_still_trains_stays_running(storage_url: str) -> None:
    search = make_search(n_trials=3, workers=2)
    make_study(search, storage_url, ["counted", "running"])
    tasks.finish(search.pk, REPORT, counted=1)
    search.refresh_from_db()
    assert (search.status, search.finished_at) == ("running", None)
    assert search.finished_trials == 1 and not search.events.exists()


def test_short_after_a_cancel_is_cancelled(storage_url: str) -> None:
    search = make_search(n_trials=3, cancel_requested=True)
    make_study(search, storage_url, ["counted"])
    tasks.finish(search.pk, REPORT, counted=1)
    search.refresh_from_db()
    assert search.status == "cancelled"
    assert list(search.events.values_list("kind", flat=True)) == ["search_cancelled"]
