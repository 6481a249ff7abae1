"""What the search space allows at a resolution: its cheapest and costliest architectures."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

from engine.nets.builder import build_network
from engine.nets.genome import Genome
from engine.nets.search_space import extreme_genomes
from engine.train.cost import count_macs, count_params, measure_latency


@dataclass(frozen=True)
class SpaceBounds:
    min_macs: int
    max_macs: int
    min_params: int
    max_params: int
    cheapest: str  # genome keys
    costliest: str
    scale: int
    resolution: tuple[int, int]

    @property
    def min_latency_ms(self) -> float:
        """Measured on demand: only a latency constraint needs it."""
        return fastest_latency_ms(self.scale, self.resolution)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@lru_cache(maxsize=64)  # the web form may ask for any resolution
def space_bounds(scale: int, resolution: tuple[int, int]) -> SpaceBounds:
    """Exact MACs/params bounds: every layer's cost grows with its genes and every block
    adds its own, so the extremes are among a few uniform genomes at the smallest and the
    largest corner of the space (search_space.extreme_genomes says which, and why)."""
    cheapest, costliest = extreme_genomes()

    def cost(genome: Genome) -> tuple[int, int]:  # (macs, params) of the deployed network
        net = build_network(genome, scale).deploy()
        return count_macs(net, resolution, scale), count_params(net)

    low_costs = {g: cost(g) for g in cheapest}
    high_costs = {g: cost(g) for g in costliest}
    low = min(cheapest, key=low_costs.__getitem__)
    high = max(costliest, key=high_costs.__getitem__)
    return SpaceBounds(
        min_macs=low_costs[low][0], max_macs=high_costs[high][0],
        min_params=min(params for _, params in low_costs.values()),
        max_params=max(params for _, params in high_costs.values()),
        cheapest=low.key(), costliest=high.key(), scale=scale, resolution=resolution,
    )


@lru_cache(maxsize=64)
def fastest_latency_ms(scale: int, resolution: tuple[int, int]) -> float:
    """Measured median latency of the cheapest architecture (the fastest the space gets)."""
    cheapest, _ = extreme_genomes()
    nets = [build_network(g, scale).deploy() for g in cheapest]
    net = min(nets, key=lambda n: count_macs(n, resolution, scale))
    return measure_latency(net, resolution, scale).median_ms
