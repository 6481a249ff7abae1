"""The new-search form: engine choices, engine validation, budget bounds, launch on commit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from engine.config import Rungs, SearchConfig
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
    monkeypatch.setattr("webapp.studio.tasks.launch_search.apply_async",
                        lambda args, *_, **__: calls.append(args[0]))
    return calls


def form_data(clip: Clip, **changes: Any) -> dict[str, Any]:
    data = {"name": "first try", "clip": clip.pk, "task": "sr_x2", "quality": "psnr",
            "cost": "macs", "max_macs": "", "max_params": "", "max_latency_ms": "",
            "width": 1280, "height": 720, "strategy": "nsga2", "n_trials": 12,
            "fidelity": "multi", "min_steps": 300, "max_steps": 4800, "eta": 4, "steps": 600,
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
    assert (form["n_trials"].initial, form["workers"].initial) == (32, 1)
    # Multi-fidelity by default, with the engine's rungs; single fidelity's steps kept.
    assert (form["fidelity"].initial, form["min_steps"].initial, form["max_steps"].initial,
            form["eta"].initial, form["steps"].initial) == ("multi", 300, 4800, 4, 600)
    assert form["teacher"].initial is None
    assert (form["width"].initial, form["height"].initial) == (1280, 720)
    page = response.content.decode()
    assert "Super-resolution x2" in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert reverse("studio:space_bounds") in page and "studio/search_new.js" in page


def test_page_shows_what_the_space_allows(client_in: Client, clip: Clip) -> None:
    page = client_in.get(NEW).content.decode()
    # sr_x2 at 1280x720: the engine's exact bounds, formatted like format_count.
    assert "1280x720" in page
    assert "248.83M" in page and "104.62G" in page
    assert "1.10K" in page and "455.18K" in page


def test_valid_post_creates_search_and_launches_it_on_commit(
    client_in: Client, user: User, clip: Clip, launched: list[int],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    data = form_data(clip, task="denoise", quality="ssim", cost="params", max_macs="5G",
                     max_params="50K", max_latency_ms="12.5", width=640, height=360,
                     strategy="tpe", n_trials=7, workers=2, seed=3, noise_sigma=15)
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
    assert (config.strategy, config.n_trials, config.seed) == ("tpe", 7, 3)
    assert config.rungs == Rungs(300, 4800, 4) and config.teacher is None
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
            "248.83M MACs") in page
    assert Search.objects.count() == 0 and launched == []


def test_impossible_max_params_is_refused(client_in: Client, clip: Clip) -> None:
    response = client_in.post(NEW, form_data(clip, max_params="500"))
    assert response.status_code == 400
    assert "no architecture meets max params 500: the smallest has 1.10K parameters" in (
        response.content.decode())


def test_bounds_follow_the_resolution(client_in: Client, clip: Clip) -> None:
    # 300M is possible at 640x360 (the smallest is a quarter of 249M) ...
    ok = client_in.post(NEW, form_data(clip, max_macs="300M", width=640, height=360))
    assert ok.status_code == 302
    # ... and refused for denoise at 1280x720, whose smallest net costs 398M.
    refused = client_in.post(NEW, form_data(clip, max_macs="300M", task="denoise"))
    assert refused.status_code == 400
    assert "the smallest at 1280x720 output is 398.13M MACs" in refused.content.decode()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("task", "sr_x9", "Select a valid choice"),
    ("strategy", "grid", "Select a valid choice"),
    ("cost", "flops", "Select a valid choice"),
    ("max_macs", "5X", "cannot read"),
    ("n_trials", 0, "greater than or equal to 1"),
    ("n_trials", 501, "less than or equal to 500"),
    ("min_steps", 5, "greater than or equal to 10"),
    ("eta", 1, "greater than or equal to 2"),
    ("fidelity", "double", "Select a valid choice"),
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


def test_single_fidelity_trains_every_candidate_the_same_steps(
        client_in: Client, clip: Clip, launched: list[int]) -> None:
    response = client_in.post(NEW, form_data(clip, fidelity="single", steps=50, min_steps="",
                                             max_steps="", eta=""))
    assert response.status_code == 302
    config = SearchConfig.from_dict(Search.objects.get().config)
    assert config.rungs is None and config.budget.steps == 50 and config.rung_steps == (50,)


def test_rung_fields_are_the_engines(client_in: Client, clip: Clip, launched: list[int]) -> None:
    response = client_in.post(NEW, form_data(clip, min_steps=20, max_steps=80, eta=2))
    assert response.status_code == 302
    config = SearchConfig.from_dict(Search.objects.get().config)
    assert config.rungs == Rungs(min_steps=20, max_steps=80, eta=2)
    assert config.rung_steps == (20, 40, 80)


@pytest.mark.parametrize(("changes", "field", "message"), [
    # The engine's own messages (Rungs validates itself), on the field they name first.
    ({"min_steps": 1000, "max_steps": 500}, "max_steps",
     "max_steps (500) must be at least min_steps (1000)"),
    ({"min_steps": 10, "max_steps": 100_000, "eta": 2}, "eta",
     "raise eta or min_steps (at most 8 rungs)"),
    ({"max_steps": ""}, "max_steps", "Needed for this fidelity."),
    ({"fidelity": "single", "steps": ""}, "steps", "Needed for this fidelity."),
])
def test_impossible_rungs_are_refused(client_in: Client, clip: Clip, launched: list[int],
                                      changes: dict[str, Any], field: str, message: str) -> None:
    response = client_in.post(NEW, form_data(clip, **changes))
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert Search.objects.count() == 0 and launched == []


def test_distillation_is_for_super_resolution_only(client_in: Client, clip: Clip,
                                                   launched: list[int]) -> None:
    assert client_in.post(NEW, form_data(clip, teacher="on")).status_code == 302
    assert SearchConfig.from_dict(Search.objects.get().config).teacher == "imdn"
    for task in ("denoise", "deblock"):
        response = client_in.post(NEW, form_data(clip, task=task, teacher="on"))
        assert response.status_code == 400
        [error] = response.context["form"].errors["teacher"]
        assert error.startswith("Distillation needs a super-resolution task") and \
            "no pretrained prototype" in error
    assert Search.objects.count() == 1


def test_rung_and_step_fields_show_only_for_their_fidelity(client_in: Client,
                                                           clip: Clip) -> None:
    page = client_in.get(NEW).content.decode()
    assert 'data-field="min_steps" data-only-fidelity="multi"' in page
    assert 'is-hidden"\n                   data-field="steps" data-only-fidelity="single"' in page
    assert 'is-hidden"\n                   data-field="min_steps"' not in page
    page = client_in.post(NEW, form_data(clip, fidelity="single", max_macs="1M")).content.decode()
    assert 'is-hidden"\n                   data-field="min_steps"' in page
    assert 'is-hidden"\n                   data-field="steps"' not in page


def test_the_estimate_counts_rungs_promotions_and_baselines() -> None:
    """n * min_steps, plus each promotion from rung k to k + 1 at steps[k+1] minus rung k's
    constant-rate phase (0.8 steps[k]; the decay is redone longer), plus ESPCN and FSRCNN at
    the top rung."""
    from webapp.studio.forms import STEPS_PER_SECOND, estimate_from

    estimate = estimate_from({"n_trials": "32"})  # the defaults: 300 -> 1,200 -> 4,800 at 4
    assert estimate["rung_steps"] == [300, 1200, 4800]
    # The 2 baseline seeds are anchors that reach the top rung: 30 others -> 8 -> 2, plus 2.
    assert estimate["evaluations_per_rung"] == [32, 10, 4] and estimate["evaluations"] == 46
    assert estimate["candidate_steps"] == 32 * 300
    assert estimate["promotion_steps"] == 10 * (1200 - 240) + 4 * (4800 - 960)
    assert estimate["baseline_steps"] == 2 * 4800
    assert estimate["total_steps"] == 9600 + 24960 + 9600
    slow, fast = STEPS_PER_SECOND
    assert estimate["seconds"] == pytest.approx([44160 / fast, 44160 / slow])

    tiny = estimate_from({"n_trials": "5", "min_steps": "20", "max_steps": "80", "eta": "2",
                          "workers": "2"})
    assert tiny["evaluations_per_rung"] == [5, 4, 3]  # 2 anchors + ceil(3/2), + ceil(2/2)
    assert tiny["total_steps"] == 5 * 20 + 4 * (40 - 16) + 3 * (80 - 32) + 2 * 80
    assert tiny["seconds"] == pytest.approx([500 / fast / 2, 500 / slow / 2])

    single = estimate_from({"n_trials": "24", "fidelity": "single", "steps": "600"})
    assert (single["evaluations_per_rung"], single["promotion_steps"]) == ([24], 0)
    assert single["total_steps"] == 24 * 600 + 2 * 600
    assert estimate_from({"n_trials": "4", "min_steps": "900", "max_steps": "80"}) == {
        "error": "max_steps (80) must be at least min_steps (900)"}
    assert "whole number" in estimate_from({"n_trials": "many"})["error"]


def test_the_page_and_the_bounds_endpoint_carry_the_estimate(client_in: Client,
                                                             clip: Clip) -> None:
    page = client_in.get(NEW)
    text = page.context["estimate"]["text"]
    assert text["rungs"] == "32 × 300 → 10 × 1,200 → 4 × 4,800"
    assert text["total_steps"] == "44,160" and text["time"] == "33 min to 67 min"
    html = page.content.decode()
    assert '<b data-estimate="total_steps">44,160</b>' in html
    # What search_new.js asks while the user types; the estimate answers even when the
    # bounds cannot (a bad resolution).
    url = reverse("studio:space_bounds")
    query = {"task": "sr_x2", "width": 1280, "height": 720, "n_trials": 5, "fidelity": "multi",
             "min_steps": 20, "max_steps": 80, "eta": 2, "steps": 600, "workers": 1}
    body = client_in.get(url, query).json()
    assert body["min_macs"] > 0 and body["estimate"]["total_steps"] == 500
    body = client_in.get(url, {**query, "width": 8, "max_steps": 10}).json()
    assert "resolution" in body["error"] and "max_steps (10)" in body["estimate"]["error"]
    assert "estimate" not in client_in.get(url, {"task": "sr_x2"}).json()


def test_a_search_over_the_compute_cap_is_refused_naming_the_limit(
        client_in: Client, clip: Clip, launched: list[int], settings) -> None:
    # 500 candidates to 200,000 top-rung steps: what the hostile form once accepted.
    response = client_in.post(NEW, form_data(clip, n_trials=500, max_steps=200_000,
                                             workers=8))
    assert response.status_code == 400
    body = response.content.decode()
    assert "STUDIO_MAX_SEARCH_STEPS" in body and "1,000,000" in body
    assert "STUDIO_MAX_WORKERS_PER_SEARCH" in body
    settings.STUDIO_MAX_SEARCH_STEPS = 20_000  # 12 candidates (29,520 steps) are now too many
    assert client_in.post(NEW, form_data(clip)).status_code == 400
    assert Search.objects.count() == 0 and launched == []
