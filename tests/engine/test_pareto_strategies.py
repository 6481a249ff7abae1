"""Pareto helpers (pure functions) and the strategy registry."""

from __future__ import annotations

import optuna
import pytest

from engine.registry import UnknownNameError
from engine.search.pareto import dominates, hypervolume, knee_point, non_dominated
from engine.search.strategies import STRATEGIES, make_sampler, population_size


def test_dominates() -> None:
    assert dominates((30.0, 1.0), (29.0, 2.0))
    assert dominates((30.0, 1.0), (30.0, 2.0))
    assert not dominates((30.0, 1.0), (30.0, 1.0))
    assert not dominates((31.0, 3.0), (30.0, 1.0))


def test_non_dominated_orders_by_cost_and_drops_ties() -> None:
    points = [(30.0, 5.0), (31.0, 9.0), (29.0, 1.0), (28.0, 6.0), (30.0, 5.0), (31.0, 12.0)]
    assert non_dominated(points) == [2, 0, 1]
    assert non_dominated([]) == []


def test_hypervolume_by_hand() -> None:
    # Reference (0 gain, cost 10). Points (2, 4) and (3, 8): slabs 2*6 + 1*2 = 14.
    assert hypervolume([(2.0, 4.0), (3.0, 8.0)], (0.0, 10.0)) == pytest.approx(14.0)
    # A dominated point and points beyond the reference add nothing.
    assert hypervolume([(2.0, 4.0), (3.0, 8.0), (1.0, 6.0), (-1.0, 1.0), (5.0, 11.0)],
                       (0.0, 10.0)) == pytest.approx(14.0)
    assert hypervolume([], (0.0, 10.0)) == 0.0


def test_knee_point() -> None:
    points = [(0.0, 0.0), (0.9, 0.2), (1.0, 1.0), (0.5, 0.5)]
    assert knee_point(points) == 1
    assert knee_point([]) is None


def test_each_strategy_has_its_own_sampler_class() -> None:
    expected = {"nsga2": optuna.samplers.NSGAIISampler, "tpe": optuna.samplers.TPESampler,
                "random": optuna.samplers.RandomSampler}
    assert set(STRATEGIES.keys()) == set(expected)
    classes = {name: type(make_sampler(name, seed=1, n_trials=24)) for name in STRATEGIES}
    assert classes == expected
    assert len(set(classes.values())) == len(classes)


def test_nsga2_population_allows_generations() -> None:
    sampler = make_sampler("nsga2", seed=0, n_trials=24)
    assert sampler._population_size == population_size(24) == 8


def test_unknown_strategy_lists_names() -> None:
    with pytest.raises(UnknownNameError, match="choose one of: nsga2, tpe, random"):
        make_sampler("grid", 0, 10)
