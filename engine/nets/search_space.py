"""The search space, in exactly one place: gene choices and `sample_genome(trial)`.

Also the cost bounds of the space (smallest and largest MACs at a resolution), so a
constraint no architecture can meet is refused before the search starts.
"""

from __future__ import annotations

from typing import Protocol

from engine.nets.genome import MAX_BLOCKS, Genome

WIDTHS: tuple[int, ...] = (8, 12, 16, 24, 32)
DEPTHS: tuple[int, ...] = tuple(range(1, MAX_BLOCKS + 1))
OP_NAMES: tuple[str, ...] = ("conv", "dwsep", "residual", "repconv")
KERNELS: tuple[int, ...] = (3, 5)
ACTIVATION_NAMES: tuple[str, ...] = ("relu", "lrelu", "prelu")


class SuggestsCategorical(Protocol):
    """The part of optuna.Trial the space needs (kept as a protocol for testing)."""

    def suggest_categorical(self, name: str, choices: tuple) -> object: ...


def sample_genome(trial: SuggestsCategorical) -> Genome:
    """Every gene is categorical: Optuna stores only these params, so any trial is rebuilt
    from `trial.params` alone. All slots are sampled, expressed or not (fixed length)."""
    params = {
        "width": trial.suggest_categorical("width", WIDTHS),
        "depth": trial.suggest_categorical("depth", DEPTHS),
        "activation": trial.suggest_categorical("activation", ACTIVATION_NAMES),
    }
    for i in range(MAX_BLOCKS):
        params[f"op_{i}"] = trial.suggest_categorical(f"op_{i}", OP_NAMES)
        params[f"kernel_{i}"] = trial.suggest_categorical(f"kernel_{i}", KERNELS)
    return Genome.from_params(params)


def extreme_genomes() -> tuple[list[Genome], list[Genome]]:
    """Candidates for the cheapest and the most expensive architecture of the space.

    Cost grows with width, depth and kernel, and every block adds independently, so the
    extremes are uniform genomes: try each op at the small and the large corner.
    """
    cheapest = [Genome.uniform(min(WIDTHS), min(DEPTHS), op, min(KERNELS)) for op in OP_NAMES]
    costliest = [Genome.uniform(max(WIDTHS), max(DEPTHS), op, max(KERNELS)) for op in OP_NAMES]
    return cheapest, costliest
