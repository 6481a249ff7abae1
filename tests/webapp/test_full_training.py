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


@pytest.mark.django_db
def test_a_full_training_cancels_within_steps_and_resumes(
        client_in: Client, searched: Search, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The page's cancel, pressed while the worker trains (here: from its progress hook, in
    the worker's thread): it stops within CHECK_EVERY steps of the next check, says so, and
    a new start resumes from the saved state instead of step 0."""
    from webapp.studio import full_training

    number = searched.report["trials"][0]["number"]
    seen: list[int] = []
    real_send = full_training.group_send

    def send_and_cancel_once(group: str, message: dict) -> None:
        real_send(group, message)
        step = message["event"].get("step", 0)
        seen.append(step)
        if step >= 250 and len([s for s in seen if s >= 250]) == 1:
            response = client_in.post(f"/searches/{searched.pk}/full-train/cancel",
                                      {"candidate": f"trial-{number}"})
            assert response.status_code == 302

    monkeypatch.setattr(full_training, "group_send", send_and_cancel_once)
    full_train_task(searched.pk, f"trial-{number}", 20_000)
    kinds = list(searched.events.values_list("kind", flat=True))
    assert "full_training_cancel_requested" in kinds and "full_training_cancelled" in kinds
    assert "full_training_done" not in kinds
    assert max(seen) < 400 + 25  # stopped at the first check after the cancel
    monkeypatch.setattr(full_training, "group_send", real_send)
    full_train_task(searched.pk, f"trial-{number}", 440)  # started again: resumes, ends
    done = searched.events.get(kind="full_training_done").payload
    assert done["continued_from_step"] >= 200  # the state saved before the cancel
    assert client_in.post(f"/searches/{searched.pk}/full-train/cancel",
                          {"candidate": "baseline-x"}).status_code == 400
