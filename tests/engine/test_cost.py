"""MACs (flop counter, scaled exactly to the stated resolution), params and latency."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.nets.builder import build_network
from engine.nets.genome import Genome
from engine.nets.handcrafted import espcn
from engine.nets.search_space import baseline_seed_genomes
from engine.search.space_bounds import space_bounds
from engine.train.cost import (
    count_macs,
    count_params,
    input_size,
    measure_cost,
    measure_latency,
    torch_threads,
)


def test_macs_of_one_conv_by_hand() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.PixelShuffle(2))
    # 3*8*9 MACs per input pixel; a 1280x720 output at x2 has 640*360 input pixels.
    assert count_macs(net, (1280, 720), 2) == 3 * 8 * 9 * 640 * 360


def test_macs_of_the_reference_nets() -> None:
    # The design note's table (x2, 720p output): 0.51G, 2.6G, 13.7G and ESPCN 6.1G.
    assert count_macs(build_network(Genome.uniform(8, 2), 2), (1280, 720), 2) == 514_252_800
    assert round(count_macs(build_network(Genome.uniform(16, 4), 2), (1280, 720), 2) / 1e8) == 26
    assert round(count_macs(espcn(2), (1280, 720), 2) / 1e8) == 61


def test_macs_are_measured_on_the_deployed_form() -> None:
    net = build_network(Genome.uniform(16, 3, "repconv"), 2)
    plain = build_network(Genome.uniform(16, 3, "conv"), 2)
    cost = measure_cost(net, (1280, 720), 2, with_latency=False)
    assert cost.macs == count_macs(plain, (1280, 720), 2) < count_macs(net, (1280, 720), 2)
    assert cost.params == count_params(plain)


def test_macs_scale_with_resolution() -> None:
    net = build_network(Genome.uniform(8, 2, "dwsep", 5), 3)
    assert count_macs(net, (1280, 720), 3) == 4 * count_macs(net, (640, 360), 3)
    assert input_size((1280, 720), 3) == (427, 240)


def test_latency_needs_five_runs_and_orders_min_median() -> None:
    net = build_network(Genome.uniform(8, 1), 2).deploy()
    with pytest.raises(ValueError, match="at least 5"):
        measure_latency(net, (320, 180), 2, runs=3)
    latency = measure_latency(net, (320, 180), 2)
    assert 0 < latency.min_ms <= latency.median_ms and latency.runs == 5
    assert latency.threads == 1


def test_threads_are_restored() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_space_bounds_bracket_every_genome() -> None:
    bounds = space_bounds(2, (1280, 720))
    assert bounds.min_macs < count_macs(build_network(Genome.uniform(16, 4), 2).deploy(),
                                        (1280, 720), 2) < bounds.max_macs
    assert bounds.cheapest.startswith("w8_") and bounds.costliest.startswith("w32_")
    seeds = [build_network(g, 2).deploy() for g in baseline_seed_genomes(2)]
    assert all(bounds.min_macs < count_macs(n, (1280, 720), 2) < bounds.max_macs for n in seeds)
    assert bounds.min_params < min(count_params(n) for n in seeds)
