"""Previews: a trial of a real (tiny) search is rendered before/after on its clip, served
with Range support to its owner only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
from django.contrib.auth.models import User
from django.test import Client

from engine.config import Rungs, TrainBudget
from engine.search.search import run_search
from webapp.studio.models import Clip, Preview, Search
from webapp.studio.previews import render_preview_task
from webapp.studio.tasks import engine_config


@pytest.fixture
def searched(user: User, make_clip: Callable, make_search: Callable, settings) -> Search:
    """A search whose engine run really happened: its one candidate trained on two rungs
    (20 then 40 steps) and has weights and a saved training state."""
    clip: Clip = make_clip(user)
    search = make_search(clip, n_trials=1, resolution=(320, 180), strategy="random",
                         budget=TrainBudget(batch_size=4, patch_size=16),
                         rungs=Rungs(min_steps=20, max_steps=40, eta=2),
                         prototype_reference=False)  # IMDN: see test_progress
    report = run_search(engine_config(search), cache_root=settings.STUDIO_CACHE_DIR)
    search.report = report
    search.save()
    return search


@pytest.mark.django_db
def test_preview_renders_and_serves_ranges(client_in: Client, searched: Search,
                                           django_capture_on_commit_callbacks) -> None:
    number = searched.report["trials"][0]["number"]
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_in.post(f"/searches/{searched.pk}/previews",
                                  {"candidate": f"trial-{number}", "mode": "measured"})
    assert response.status_code == 302 and len(callbacks) == 1
    preview = Preview.objects.get()
    render_preview_task(preview.pk)  # what the worker runs
    preview.refresh_from_db()
    assert preview.status == "ready", preview.error
    assert preview.result["frames"] == 15 and len(preview.result["per_frame"]) == 15
    assert preview.result["width"] == 192 and preview.result["height"] == 128
    capture = cv2.VideoCapture(str(preview.folder / "output.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == 192
    page = client_in.get(f"/previews/{preview.pk}/")
    assert page.status_code == 200 and b"output.mp4" in page.content
    part = client_in.get(f"/previews/{preview.pk}/output.mp4", HTTP_RANGE="bytes=0-99")
    assert part.status_code == 206 and len(b"".join(part.streaming_content)) == 100
    assert client_in.get(f"/previews/{preview.pk}/../../x").status_code == 404


@pytest.mark.django_db
def test_preview_refuses_bad_candidates_and_strangers(client_in: Client, searched: Search,
                                                      other_user: User) -> None:
    assert client_in.post(f"/searches/{searched.pk}/previews",
                          {"candidate": "../../etc"}).status_code == 400
    missing = client_in.post(f"/searches/{searched.pk}/previews", {"candidate": "trial-999"})
    assert missing.status_code == 400 and b"no trained weights" in missing.content
    preview = Preview.objects.create(search=searched, candidate="trial-0")
    stranger = Client()
    stranger.force_login(other_user)
    assert stranger.get(f"/previews/{preview.pk}/").status_code == 404
    assert stranger.get(f"/previews/{preview.pk}/output.mp4").status_code == 404
    assert stranger.post(f"/searches/{searched.pk}/previews",
                         {"candidate": "trial-0"}).status_code == 404


@pytest.mark.django_db
def test_model_bundle_download(client_in: Client, searched: Search, other_user: User) -> None:
    import io
    import json
    import zipfile

    number = searched.report["trials"][0]["number"]
    response = client_in.get(f"/searches/{searched.pk}/models/trial-{number}.zip")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert set(archive.namelist()) >= {"model.onnx", "model.torchscript.pt", "model_card.json",
                                       "MODEL_CARD.md"}
    card = json.loads(archive.read("model_card.json"))
    assert card["architecture"] == searched.report["trials"][0]["arch"]
    assert card["macs"] == searched.report["trials"][0]["macs"]
    # The clip by its owner's name, never by the random name it is stored under.
    stored_as = Path(searched.clip.file.name).name
    assert stored_as != "city_tiny.mp4"
    assert card["metrics"]["clip"] == "city_tiny.mp4"
    assert card["parity"]["real_input"] == "2 frames of city_tiny.mp4 degraded by sr_x2"
    assert stored_as not in archive.read("MODEL_CARD.md").decode()
    assert stored_as not in json.dumps(card)
    assert client_in.get(f"/searches/{searched.pk}/models/trial-999.zip").status_code == 404
    stranger = Client()
    stranger.force_login(other_user)
    assert stranger.get(
        f"/searches/{searched.pk}/models/trial-{number}.zip").status_code == 404


def test_previews_run_on_the_interactive_queue_apart_from_long_jobs(settings) -> None:
    """A preview never waits behind a search or a full training: its own queue, with its
    own consumer (embedded: a thread per queue; docker-compose: the `interactive` service)."""
    from webapp.celery import app
    from webapp.studio.full_training import full_train_task
    from webapp.studio.tasks import search_worker

    def queue_of(task) -> str:  # noqa: ANN001  # a Celery task
        return app.amqp.router.route({}, task.name)["queue"].name

    assert queue_of(render_preview_task) == "interactive"
    assert queue_of(search_worker) == queue_of(full_train_task) == "celery"
    assert set(settings.STUDIO_QUEUES) == {"celery", "interactive"}


@pytest.mark.django_db
def test_a_running_preview_cancels_between_frames_and_keeps_nothing(
        client_in: Client, searched: Search, monkeypatch: pytest.MonkeyPatch) -> None:
    number = searched.report["trials"][0]["number"]
    preview = Preview.objects.create(search=searched, candidate=f"trial-{number}")
    frames: list[int] = []

    def progress_broadcast(group: str, message: dict) -> None:
        frames.append(message["event"]["done"])
        if message["event"]["done"] == 3:  # the owner presses Cancel mid-render
            assert client_in.post(f"/previews/{preview.pk}/cancel").status_code == 302

    monkeypatch.setattr("webapp.studio.previews.group_send", progress_broadcast)
    render_preview_task(preview.pk)
    preview.refresh_from_db()
    assert preview.status == "cancelled" and frames == [1, 2, 3]  # stopped at the next frame
    assert not preview.folder.exists()
    assert searched.events.filter(kind="preview_cancelled").count() == 1
    page = client_in.get(f"/previews/{preview.pk}/").content.decode()
    assert "Cancelled" in page and "nothing was kept" in page


@pytest.mark.django_db
def test_a_queued_preview_cancels_at_once_and_never_starts(
        client_in: Client, searched: Search, other_user: User) -> None:
    number = searched.report["trials"][0]["number"]
    preview = Preview.objects.create(search=searched, candidate=f"trial-{number}")
    stranger = Client()
    stranger.force_login(other_user)
    assert stranger.post(f"/previews/{preview.pk}/cancel").status_code == 404
    answer = client_in.post(f"/previews/{preview.pk}/cancel", HTTP_ACCEPT="application/json")
    assert answer.json()["preview"]["status"] == "cancelled"
    render_preview_task(preview.pk)  # the worker takes its message later: nothing happens
    preview.refresh_from_db()
    assert preview.status == "cancelled" and not preview.folder.exists()


@pytest.mark.django_db
def test_the_report_and_its_plot_name_the_clip_as_uploaded(searched: Search) -> None:
    from engine.search.plot import plot_title

    assert searched.report["clip"]["name"] == "city_tiny.mp4"
    assert Path(searched.report["clip"]["path"]).name != "city_tiny.mp4"  # stored at random
    assert plot_title(searched.report).startswith("Super-resolution")
    assert " on city_tiny.mp4: " in plot_title(searched.report)


@pytest.mark.django_db
def test_preview_page_says_which_frames_and_answers_json(
        client_in: Client, user: User, make_clip: Callable, make_search: Callable) -> None:
    clip: Clip = make_clip(user)
    Clip.objects.filter(pk=clip.pk).update(frame_count=120)  # longer than a preview's 60
    search = make_search(clip)
    preview = Preview.objects.create(search=search, candidate="trial-1", status="running",
                                     frames_done=5, frames_total=60)
    page = client_in.get(f"/previews/{preview.pk}/")
    html = page.content.decode()
    assert 'http-equiv="refresh"' not in html  # preview.js follows it instead
    assert "Rendering the first 60 of 120 frames: 5 done." in html
    assert "studio/preview.js" in html
    assert "<h1>trial-1</h1>" in html  # the buttons sit beside the heading, not in it
    assert "Accept" in page["Vary"]
    answer = client_in.get(f"/previews/{preview.pk}/", HTTP_ACCEPT="application/json")
    assert answer["Content-Type"] == "application/json" and "Accept" in answer["Vary"]
    state = answer.json()
    assert state["preview"]["status"] == "running" and state["preview"]["frames_done"] == 5
    assert state["progress"] == "Rendering the first 60 of 120 frames: 5 done."
    Preview.objects.filter(pk=preview.pk).update(status="ready", result={"frames": 60})
    ready = client_in.get(f"/previews/{preview.pk}/").content.decode()
    assert "the first 60 of 120 frames" in ready
    Clip.objects.filter(pk=clip.pk).update(frame_count=48)
    Preview.objects.filter(pk=preview.pk).update(result={"frames": 48})
    assert "all 48 frames" in client_in.get(f"/previews/{preview.pk}/").content.decode()
