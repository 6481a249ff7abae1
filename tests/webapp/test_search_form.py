"""The new-search form: engine choices, engine validation, budget bounds, launch on commit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from engine.config import SearchConfig
from engine.data.enhancement import TASKS
from engine.search.strategies import STRATEGIES
from webapp.studio.models import Clip, Search
from webapp.studio.tasks import engine_config

NEW = reverse("studio:search_new")


@pytest.fixture
def clip(user: User, make_clip: Callable[..., Clip]) -> Clip:
    return make_clip(user)


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Searches launched, recorded instead of run. The real delay_on_commit stays, so the
    launch happens only when Django runs the on_commit callbacks."""
    calls: list[int] = []
    monkeypatch.setattr("webapp.studio.tasks.launch_search.delay",
                        lambda search_id: calls.append(search_id))
    return calls


def form_data(clip: Clip, **changes: Any) -> dict[str, Any]:
    data = {"name": "first try", "clip": clip.pk, "task": "sr_x2", "quality": "psnr",
            "cost": "macs", "max_macs": "", "max_params": "", "max_latency_ms": "",
            "width": 1280, "height": 720, "strategy": "nsga2", "n_trials": 12, "steps": 600,
            "workers": 1, "seed": 0, "noise_sigma": 25, "jpeg_quality": 20}
    data.update(changes)
    return data


def test_form_offers_engine_choices_and_defaults(client_in: Client, clip: Clip) -> None:
    response = client_in.get(NEW + f"?clip={clip.pk}")
    assert response.status_code == 200
    form = response.context["form"]
    assert [value for value, _ in form.fields["task"].choices] == TASKS.keys()
    assert [value for value, _ in form.fields["strategy"].choices] == STRATEGIES.keys()
    assert form["clip"].initial == clip.pk
    assert (form["n_trials"].initial, form["steps"].initial, form["workers"].initial) == (
        12, 600, 1)
    assert (form["width"].initial, form["height"].initial) == (1280, 720)
    page = response.content.decode()
    assert "Super-resolution x2" in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert reverse("studio:space_bounds") in page and "studio/search_new.js" in page


def test_page_shows_what_the_space_allows(client_in: Client, clip: Clip) -> None:
    page = client_in.get(NEW).content.decode()
    # sr_x2 at 1280x720: the engine's exact bounds, formatted like format_count.
    assert "1280x720" in page
    assert "280.17M" in page and "71.77G" in page
    assert "1.27K" in page and "312.17K" in page


def test_valid_post_creates_search_and_launches_it_on_commit(
    client_in: Client, user: User, clip: Clip, launched: list[int],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    data = form_data(clip, task="denoise", quality="ssim", cost="params", max_macs="5G",
                     max_params="50K", max_latency_ms="12.5", width=640, height=360,
                     strategy="tpe", n_trials=7, steps=50, workers=2, seed=3, noise_sigma=15)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client_in.post(NEW, data)
    search = Search.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("studio:search_detail", args=[search.pk])
    assert launched == [search.pk] and len(callbacks) == 1
    assert (search.owner, search.clip, search.name, search.workers) == (
        user, clip, "first try", 2)
    assert search.status == Search.Status.QUEUED
    config = SearchConfig.from_dict(search.config)
    assert config.task == "denoise" and config.noise_sigma == 15
    assert config.objectives == ("ssim", "params")
    assert config.constraints.max_macs == 5_000_000_000
    assert config.constraints.max_params == 50_000
    assert config.constraints.max_latency_ms == 12.5
    assert config.resolution == (640, 360)
    assert (config.strategy, config.n_trials, config.budget.steps, config.seed) == (
        "tpe", 7, 50, 3)
    # The Celery task turns the stored dict into a runnable engine config.
    engine = engine_config(search)
    assert Path(engine.clip) == Path(clip.file.path)
    assert engine.resume and engine.study_name.startswith(f"studio-search-{search.pk}-")


def test_launch_waits_for_the_commit(client_in: Client, clip: Clip, launched: list[int],
                                     django_capture_on_commit_callbacks: Callable[..., Any]
                                     ) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client_in.post(NEW, form_data(clip))
    assert launched == [] and len(callbacks) == 1


def test_impossible_max_macs_is_refused(client_in: Client, clip: Clip,
                                        launched: list[int]) -> None:
    response = client_in.post(NEW, form_data(clip, max_macs="1M"))
    assert response.status_code == 400
    page = response.content.decode()
    assert ("no architecture meets max MACs 1.00M: the smallest at 1280x720 output is "
            "280.17M MACs") in page
    assert Search.objects.count() == 0 and launched == []


def test_impossible_max_params_is_refused(client_in: Client, clip: Clip) -> None:
    response = client_in.post(NEW, form_data(clip, max_params="500"))
    assert response.status_code == 400
    assert "no architecture meets max params 500: the smallest has 1.27K parameters" in (
        response.content.decode())


def test_bounds_follow_the_resolution(client_in: Client, clip: Clip) -> None:
    # 500M is possible at 640x360 (the smallest is a quarter of 280M) ...
    ok = client_in.post(NEW, form_data(clip, max_macs="500M", width=640, height=360))
    assert ok.status_code == 302
    # ... and refused for denoise at 1280x720, whose smallest net costs 523M.
    refused = client_in.post(NEW, form_data(clip, max_macs="500M", task="denoise"))
    assert refused.status_code == 400
    assert "the smallest at 1280x720 output is 523.47M MACs" in refused.content.decode()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("task", "sr_x9", "Select a valid choice"),
    ("strategy", "grid", "Select a valid choice"),
    ("cost", "flops", "Select a valid choice"),
    ("max_macs", "5X", "cannot read"),
    ("n_trials", 0, "greater than or equal to 1"),
    ("n_trials", 501, "less than or equal to 500"),
    ("steps", 5, "greater than or equal to 10"),
    ("workers", 9, "less than or equal to 8"),
    ("width", 8, "greater than or equal to 16"),
])
def test_bad_values_are_refused(client_in: Client, clip: Clip, launched: list[int],
                                field: str, value: Any, message: str) -> None:
    response = client_in.post(NEW, form_data(clip, **{field: value}))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Search.objects.count() == 0 and launched == []


def test_task_options_show_only_for_their_task(client_in: Client, clip: Clip) -> None:
    page = client_in.get(NEW).content.decode()
    assert 'is-hidden"\n                   data-field="noise_sigma"' in page
    response = client_in.post(NEW, form_data(clip, task="denoise", max_macs="1M"))
    page = response.content.decode()
    assert 'data-field="noise_sigma" data-only-task="denoise"' in page
    assert 'is-hidden"\n                   data-field="noise_sigma"' not in page


def test_search_post_without_csrf_token_is_forbidden(user: User, clip: Clip,
                                                     launched: list[int]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(NEW, form_data(clip)).status_code == 403
    assert Search.objects.count() == 0


def test_without_clips_the_page_says_to_add_one(client_in: Client) -> None:
    page = client_in.get(NEW).content.decode()
    assert "First, add a clip" in page and "Try the sample clip" in page
