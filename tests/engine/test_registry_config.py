"""Registries list valid names on a typo; configs round-trip and refuse bad values."""

from __future__ import annotations

import pytest

from engine.config import (
    ConfigError,
    Constraints,
    SearchConfig,
    TrainBudget,
    format_count,
    parse_count,
)
from engine.registry import Registry, UnknownNameError


def test_unknown_key_lists_valid_names() -> None:
    registry: Registry[int] = Registry("widget")
    registry.register("a", 1)
    registry.register("b", 2)
    with pytest.raises(UnknownNameError) as info:
        registry.get("c")
    assert str(info.value) == "unknown widget 'c'; choose one of: a, b"
    assert isinstance(info.value, KeyError)


def test_register_twice_refused_and_decorator_form() -> None:
    registry: Registry = Registry("thing")

    @registry.register("f")
    def f() -> int:
        return 3

    assert registry.get("f") is f and "f" in registry and len(registry) == 1
    with pytest.raises(ValueError, match="already registered"):
        registry.register("f", f)


@pytest.mark.parametrize(("text", "value"), [
    ("5G", 5_000_000_000), ("50K", 50_000), ("1.5M", 1_500_000), ("2000", 2000),
    ("0.5g", 500_000_000),
])
def test_parse_count(text: str, value: int) -> None:
    assert parse_count(text) == value


@pytest.mark.parametrize("text", ["", "G", "5X", "-3K", "0", "five"])
def test_parse_count_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_count(text)


def test_format_count() -> None:
    assert format_count(2_620_000_000) == "2.62G"
    assert format_count(11_548) == "11.55K"
    assert format_count(12) == "12"


def test_config_round_trips_through_dict() -> None:
    config = SearchConfig(
        clip="a.mp4", task="denoise", objectives=("ssim", "latency"),
        budget=TrainBudget(steps=7, threads=2), constraints=Constraints(max_macs=10**9),
        resolution=(640, 360),
    )
    again = SearchConfig.from_dict(config.to_dict())
    assert again == config


@pytest.mark.parametrize("changes", [
    {"n_trials": 0}, {"objectives": ("psnr", "flops")}, {"objectives": ("psnr",)},
    {"n_frames": 1}, {"eval_fraction": 1.0}, {"jpeg_quality": 0}, {"resolution": (8, 8)},
])
def test_bad_config_values(changes: dict) -> None:
    with pytest.raises(ConfigError):
        SearchConfig(clip="x", **changes)


def test_bad_budget_and_constraints() -> None:
    with pytest.raises(ConfigError, match="steps"):
        TrainBudget(steps=0)
    with pytest.raises(ConfigError, match="max_params"):
        Constraints(max_params=-1)
    with pytest.raises(ConfigError, match="unknown config keys: colour"):
        SearchConfig.from_dict({"clip": "x", "colour": "red"})


def test_a_stored_config_without_rungs_was_single_fidelity() -> None:
    legacy = SearchConfig.from_dict({"clip": "x", "budget": {"steps": 600}})
    assert legacy.rungs is None and legacy.rung_steps == (600,)
    current = SearchConfig(clip="x")
    assert SearchConfig.from_dict(current.to_dict()) == current
    assert current.rung_steps == (300, 1200, 4800) and current.rungs.planned(32) == [32, 8, 2]
    # The two baseline seeds are anchors: 30 others -> 8 -> 2, plus 2 at every rung.
    assert current.planned_evaluations == [32, 10, 4]


def test_the_spec_is_what_is_searched_and_the_place_where() -> None:
    from dataclasses import fields

    from engine.config import RunPlace, SearchSpec
    from engine.search.study import fingerprint

    config = SearchConfig(clip="a.mp4", storage="sqlite:///x.db", out_dir="runs/a")
    spec_names = {f.name for f in fields(SearchSpec)}
    place_names = {f.name for f in fields(RunPlace)}
    assert not spec_names & place_names
    # Every field is in one of them, or says how much / how a search runs.
    how = {"n_trials", "strategy", "device", "learned_baselines", "prototype_reference"}
    assert {f.name for f in fields(SearchConfig)} == spec_names | place_names | how
    moved = config.with_changes(clip="b.mp4", storage=None, out_dir=None, n_trials=5)
    assert moved.spec == config.spec and moved.place != config.place
    assert fingerprint(moved) == fingerprint(config)  # a moved search resumes
    assert fingerprint(config.with_changes(seed=1)) != fingerprint(config)
    assert fingerprint(config)["rungs"] == {"min_steps": 300, "max_steps": 4800, "eta": 4}
