"""Full training from the studio: a worker trains a trial on, the result is listed on the
search page and previews and downloads accept it like any candidate."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from engine.config import TrainBudget
from engine.train.checkpoint import latest_state
from engine.train.trainer import stable_steps
from tests.webapp.test_previews import searched  # noqa: F401  # the real tiny search
from webapp.studio.full_training import full_train_task
from webapp.studio.models import Search
from webapp.studio.tasks import engine_config


@pytest.mark.django_db
def test_full_training_then_preview_and_download(client_in: Client, searched: Search,  # noqa: F811
                                                 django_capture_on_commit_callbacks) -> None:
    number = searched.report["trials"][0]["number"]
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_in.post(f"/searches/{searched.pk}/full-train",
                                  {"candidate": f"trial-{number}", "steps": "100"})
    assert response.status_code == 302 and len(callbacks) == 1
    full_train_task(searched.pk, f"trial-{number}", 100)  # what the worker runs
    kinds = list(searched.events.values_list("kind", flat=True))
    assert "full_training_started" in kinds and "full_training_done" in kinds
    page = client_in.get(f"/searches/{searched.pk}/")
    assert f"full-trial-{number}".encode() in page.content
    done = searched.events.get(kind="full_training_done").payload
    assert done["steps"] == 100 and 15 < done["psnr"] < 50
    # It continued the candidate's state at its top rung (40 steps: the constant-rate phase
    # ends at 32), optimizer included, instead of starting over.
    state = latest_state(engine_config(searched).out_dir, number)
    assert state is not None and state.name == f"candidate-{number}-rung1.pt"
    assert done["continued_from_step"] == stable_steps(40, TrainBudget()) == 32
    assert searched.events.get(kind="full_training_started").payload["from_state"] is True
    preview = client_in.post(f"/searches/{searched.pk}/previews",
                             {"candidate": f"full-trial-{number}"})
    assert preview.status_code == 302
    bundle = client_in.get(f"/searches/{searched.pk}/models/full-trial-{number}.zip")
    assert bundle.status_code == 200


@pytest.mark.django_db
def test_full_training_refuses_bad_requests(client_in: Client, searched: Search,  # noqa: F811
                                            other_user: User) -> None:
    url = f"/searches/{searched.pk}/full-train"
    assert client_in.post(url, {"candidate": "trial-0", "steps": "5"}).status_code == 400
    assert client_in.post(url, {"candidate": "baseline-espcn"}).status_code == 400
    assert client_in.post(url, {"candidate": "trial-77", "steps": "500"}).status_code == 400
    assert client_in.get(url).status_code == 405
    stranger = Client()
    stranger.force_login(other_user)
    assert stranger.post(url, {"candidate": "trial-0", "steps": "500"}).status_code == 404
