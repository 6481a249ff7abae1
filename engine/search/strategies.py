"""Search strategies: thin factories over Optuna's samplers, never a hand-written sampler."""

from __future__ import annotations

from collections.abc import Callable

import optuna

from engine.registry import Registry

SamplerFactory = Callable[[int, int], optuna.samplers.BaseSampler]  # (seed, n_trials)

STRATEGIES: Registry[SamplerFactory] = Registry("strategy")


def population_size(n_trials: int) -> int:
    """Several generations even in a short search: with Optuna's default of 50, a 24-trial
    search would never leave its random first generation."""
    return max(6, min(50, n_trials // 3))


def tpe_startup_trials(n_trials: int) -> int:
    """Random candidates TPE draws before it starts modelling."""
    return max(5, n_trials // 4)


@STRATEGIES.register("nsga2")
def nsga2(seed: int, n_trials: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIISampler(population_size=population_size(n_trials), seed=seed)


@STRATEGIES.register("tpe")
def tpe(seed: int, n_trials: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(
        seed=seed, multivariate=True, n_startup_trials=tpe_startup_trials(n_trials)
    )


@STRATEGIES.register("random")
def random(seed: int, n_trials: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


def make_sampler(name: str, seed: int, n_trials: int) -> optuna.samplers.BaseSampler:
    """The sampler of strategy `name`; an unknown name lists the valid ones."""
    return STRATEGIES.get(name)(seed, n_trials)
