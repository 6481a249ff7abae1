"""Live previews: a trial that joins the Pareto front gets a before/after crop, pushed as an
event and shown on the search page, served to its owner only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from engine.events import TrialFinished
from tests.webapp.test_previews import searched  # noqa: F401  # the real tiny search
from webapp.studio.live_preview import LivePreviewSink
from webapp.studio.models import Search
from webapp.studio.tasks import engine_config


@pytest.mark.django_db
def test_front_trial_gets_a_before_after_crop(client_in: Client, searched: Search,  # noqa: F811
                                              other_user: User) -> None:
    trial = searched.report["trials"][0]
    sink = LivePreviewSink(searched.pk, engine_config(searched))
    sink.emit(TrialFinished(trial=trial, finished=1, n_trials=1, on_front=True))
    event = searched.events.get(kind="front_preview")
    assert event.payload["number"] == trial["number"]
    before = client_in.get(event.payload["before"])
    after = client_in.get(event.payload["after"])
    assert before.status_code == after.status_code == 200
    png_before = b"".join(before.streaming_content)
    png_after = b"".join(after.streaming_content)
    assert png_before[:8] == png_after[:8] == b"\x89PNG\r\n\x1a\n" and png_before != png_after
    page = client_in.get(f"/searches/{searched.pk}/")
    assert event.payload["after"].encode() in page.content
    stranger = Client()
    stranger.force_login(other_user)
    assert stranger.get(event.payload["after"]).status_code == 404
    # Off-front or failed trials render nothing.
    sink.emit(TrialFinished(trial={**trial, "number": 99}, finished=1, n_trials=1,
                            on_front=False))
    assert searched.events.filter(kind="front_preview").count() == 1
