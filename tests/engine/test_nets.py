"""Genome encoding, the search space, the blocks and the builder."""

from __future__ import annotations

import optuna
import pytest
import torch
from torch import nn

from engine.nets.builder import build_network
from engine.nets.genome import MAX_BLOCKS, Genome
from engine.nets.handcrafted import HANDCRAFTED
from engine.nets.ops import OPS
from engine.nets.search_space import (
    ACTIVATION_NAMES,
    KERNELS,
    OP_NAMES,
    WIDTHS,
    extreme_genomes,
    sample_genome,
)

DEPLOYED_LEAVES = (nn.Conv2d, nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.PixelShuffle)


def _mixed_genome(activation: str = "prelu") -> Genome:
    ops = ("repconv", "dwsep", "residual", "conv", "repconv", "conv")
    return Genome(16, 5, ops, (3, 5, 3, 5, 5, 3), activation)


def test_params_round_trip_and_fixed_length() -> None:
    genome = _mixed_genome()
    params = genome.to_params()
    assert len(params) == 3 + 2 * MAX_BLOCKS
    assert Genome.from_params(params) == genome
    assert Genome.from_dict(genome.to_dict()) == genome
    with pytest.raises(ValueError):
        Genome(16, 2, ("conv",) * 3, (3,) * 3)


def test_key_ignores_unexpressed_slots() -> None:
    a = Genome(8, 2, ("conv", "dwsep", "conv", "conv", "conv", "conv"), (3,) * MAX_BLOCKS)
    b = Genome(8, 2, ("conv", "dwsep", "residual", "repconv", "dwsep", "dwsep"),
               (3, 3, 5, 5, 5, 5))
    assert a.key() == b.key() == "w8_conv3-dwsep3_prelu+res"
    assert a.key() != Genome.uniform(8, 3).key()


def test_sample_genome_uses_only_the_space() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(20):
        trial = study.ask()
        genome = sample_genome(trial)
        assert genome.width in WIDTHS and genome.activation in ACTIVATION_NAMES
        assert set(genome.ops) <= set(OP_NAMES) and set(genome.kernels) <= set(KERNELS)
        assert Genome.from_params(trial.params) == genome  # rebuilt from params alone
        study.tell(trial, 0.0)


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("op", OP_NAMES)
def test_output_shapes(scale: int, op: str) -> None:
    net = build_network(Genome.uniform(8, 2, op, 3), scale)
    x = torch.rand(2, 3, 12, 17)
    assert net(x).shape == (2, 3, 12 * scale, 17 * scale)


@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_collapsed_network_is_plain_and_matches(activation: str) -> None:
    torch.manual_seed(0)
    net = build_network(_mixed_genome(activation), 2)
    with torch.no_grad():  # trained-looking weights, not the near-identity init
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    deployed = net.deploy()
    leaves = [m for m in deployed.modules() if not list(m.children())]
    assert leaves and all(isinstance(m, DEPLOYED_LEAVES) for m in leaves), leaves
    assert not any(isinstance(m, type(OPS.get("repconv")(4, 3, "relu")))
                   for m in deployed.modules())
    x = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        assert torch.allclose(net.eval()(x), deployed(x), atol=1e-5)
    fused = sum(1 for m in deployed.modules() if isinstance(m, nn.Conv2d))
    trained = sum(1 for m in net.modules() if isinstance(m, nn.Conv2d))
    assert fused == trained - 2  # each of the two repconv blocks lost its 1x1 branch


def test_global_residual_starts_near_upsampling() -> None:
    # Zero the tail: the network is then exactly the bicubic upsampling of its input.
    net = build_network(Genome.uniform(8, 1), 2)
    nn.init.zeros_(net.tail[0].weight)
    nn.init.zeros_(net.tail[0].bias)
    x = torch.rand(1, 3, 10, 10)
    expected = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic")
    assert torch.allclose(net(x), expected)


def test_extremes_are_uniform_corners() -> None:
    cheapest, costliest = extreme_genomes()
    assert {g.width for g in cheapest} == {min(WIDTHS)}
    assert {g.depth for g in costliest} == {MAX_BLOCKS}


@pytest.mark.parametrize("name", ["espcn", "fsrcnn", "edsr"])
@pytest.mark.parametrize("scale", [1, 3])
def test_handcrafted_shapes(name: str, scale: int) -> None:
    net = HANDCRAFTED.get(name)(scale) if name != "edsr" else HANDCRAFTED.get(name)(scale)
    assert net(torch.rand(1, 3, 9, 11)).shape == (1, 3, 9 * scale, 11 * scale)
