"""Genome encoding, the search space, the blocks and the builder."""

from __future__ import annotations

import random
from typing import Any

import optuna
import pytest
import torch
from torch import nn

from engine.nets.builder import build_network, upsample_input
from engine.nets.genome import MAX_BLOCKS, Genome
from engine.nets.handcrafted import HANDCRAFTED
from engine.nets.ops import OPS, make_activation
from engine.nets.search_space import (
    ACTIVATION_NAMES,
    OP_NAMES,
    baseline_seed_genomes,
    extreme_genomes,
    gene_choices,
    sample_genome,
    subpixel_kernel,
)
from engine.train.cost import count_macs, count_params

DEPLOYED_LEAVES = (nn.Conv2d, nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.Tanh, nn.PixelShuffle)
OLD_DICT = {  # a genome as stored before MAX_BLOCKS 8 and the stem/shrink/expand/tail genes
    "width": 16, "depth": 5, "ops": ["repconv", "dwsep", "residual", "conv", "repconv", "conv"],
    "kernels": [3, 5, 3, 5, 5, 3], "activation": "lrelu", "global_residual": True,
    "key": "w16_repconv3-dwsep5-residual3-conv5-repconv5_lrelu+res",
}


def _mixed_genome(activation: str = "prelu", **genes: Any) -> Genome:
    ops = ("repconv", "dwsep", "residual", "conv", "repconv", "conv", "dwsep", "residual")
    return Genome(16, 5, ops, (3, 5, 3, 5, 5, 3, 3, 5), activation, **genes)


WIDE = {"stem_kernel": 5, "stem_width": 48, "shrink_kernel": 3, "expand": True,
        "tail_kernel": 5}


def _random_genome(rng: random.Random) -> Genome:
    return Genome.from_params({name: rng.choice(choices)
                               for name, choices in gene_choices().items()})


def test_params_round_trip_and_fixed_length() -> None:
    for genome in (_mixed_genome(), _mixed_genome("tanh", **WIDE)):
        params = genome.to_params()
        assert set(params) == set(gene_choices())
        assert len(params) == 8 + 2 * MAX_BLOCKS
        assert Genome.from_params(params) == genome
        assert Genome.from_dict(genome.to_dict()) == genome
    with pytest.raises(ValueError):
        Genome(16, 2, ("conv",) * 3, (3,) * 3)
    with pytest.raises(ValueError):
        Genome.uniform(16, MAX_BLOCKS + 1)
    with pytest.raises(ValueError):
        Genome.uniform(16, 2, tail_kernel=4)


def test_key_ignores_unexpressed_genes() -> None:
    pad = ("conv",) * (MAX_BLOCKS - 6)
    a = Genome(8, 2, ("conv", "dwsep", "conv", "conv", "conv", "conv") + pad, (3,) * MAX_BLOCKS)
    b = Genome(8, 2, ("conv", "dwsep", "residual", "repconv", "dwsep", "dwsep") + pad,
               (3, 3, 5, 5, 5, 5) + (5,) * (MAX_BLOCKS - 6),
               stem_width=8, shrink_kernel=3, expand=True)  # a stem no wider: no shrink
    assert a.key() == b.key() == "w8_conv3-dwsep3_prelu+res"  # the original names stay
    assert a.key() != Genome.uniform(8, 3).key()
    assert Genome.uniform(64, 1, stem_width=32, expand=True).key() == "w64_conv3_prelu+res"
    bare = Genome.uniform(12, 0, stem_kernel=5, tail_kernel=5)
    assert bare.key() == "w12_stem5_none_tail5_prelu+res"
    shrunk = Genome.uniform(12, 2, "conv", 3, "tanh", False, stem_width=56, expand=True)
    assert shrunk.key() == "w12_stem3x56-shrink1_conv3-conv3_expand_tanh"
    assert shrunk.key() != Genome.uniform(12, 2, "conv", 3, "tanh", False, stem_width=48,
                                          expand=True).key()


def test_old_genome_dicts_and_params_rebuild_the_old_network() -> None:
    genome = Genome.from_dict(OLD_DICT)
    assert genome.key() == OLD_DICT["key"]
    assert genome.ops[:6] == tuple(OLD_DICT["ops"]) and len(genome.ops) == MAX_BLOCKS
    assert not genome.shrinks and (genome.stem_kernel, genome.tail_kernel) == (3, 3)
    old_params = {"width": 16, "depth": 5, "activation": "lrelu",
                  **{f"op_{i}": op for i, op in enumerate(OLD_DICT["ops"])},
                  **{f"kernel_{i}": k for i, k in enumerate(OLD_DICT["kernels"])}}
    assert Genome.from_params(old_params) == genome
    assert set(genome.to_params().items()) >= set(old_params.items())
    with pytest.raises(ValueError):  # fewer slots than expressed blocks
        Genome.from_dict({**OLD_DICT, "ops": ["conv"] * 3, "kernels": [3] * 3})

    # The template as it was: its state dict (an old checkpoint) loads strictly and agrees.
    width, act, scale = genome.width, genome.activation, 2
    old = nn.Module()
    old.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), make_activation(act, width))
    old.body = nn.Sequential(*(OPS.get(op)(width, k, act) for op, k in genome.blocks))
    old.tail = nn.Sequential(nn.Conv2d(width, 3 * scale * scale, 3, padding=1),
                             nn.PixelShuffle(scale))
    new = build_network(genome, scale)
    new.load_state_dict(old.state_dict(), strict=True)
    x = torch.rand(1, 3, 10, 13)
    with torch.no_grad():
        expected = old.tail(old.body(old.stem(x))) + upsample_input(x, scale)
        assert torch.equal(new.eval()(x), expected)


def test_sample_genome_uses_only_the_space() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    choices = gene_choices()
    for _ in range(30):
        trial = study.ask()
        genome = sample_genome(trial)
        assert all(value in choices[name] for name, value in genome.to_params().items())
        assert Genome.from_params(trial.params) == genome  # rebuilt from params alone
        study.tell(trial, 0.0)


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("op", OP_NAMES)
def test_output_shapes(scale: int, op: str) -> None:
    x = torch.rand(2, 3, 12, 17)
    for genome in (Genome.uniform(8, 2, op, 3), Genome.uniform(8, 1, op, 5, "tanh", **WIDE),
                   Genome.uniform(8, 0, op)):
        assert build_network(genome, scale)(x).shape == (2, 3, 12 * scale, 17 * scale)


@pytest.mark.parametrize("genes", [{}, WIDE, {"stem_kernel": 5, "tail_kernel": 5}])
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_collapsed_network_is_plain_and_matches(activation: str, genes: dict) -> None:
    torch.manual_seed(0)
    net = build_network(_mixed_genome(activation, **genes), 2)
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
    # Zero the output conv: the network is then exactly the bicubic upsampling of its input.
    for genome in (Genome.uniform(8, 1), Genome.uniform(8, 1, **WIDE)):
        net = build_network(genome, 2)
        nn.init.zeros_(net.output_conv.weight)
        nn.init.zeros_(net.output_conv.bias)
        x = torch.rand(1, 3, 10, 10)
        expected = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic")
        assert torch.allclose(net(x), expected)


def _cost(genome: Genome) -> tuple[int, int]:
    """(MACs per input pixel, params) of the deployed x2 net, counted from its layers' shapes
    (all same-padded convolutions): no forward pass, so a large sample stays cheap."""
    net = build_network(genome, 2).deploy()
    macs = sum(m.in_channels // m.groups * m.out_channels * m.kernel_size[0] * m.kernel_size[1]
               for m in net.modules() if isinstance(m, nn.Conv2d))
    return macs, count_params(net)


def test_extremes_bound_a_brute_force_sample() -> None:
    cheapest, costliest = extreme_genomes()
    choices = gene_choices()
    for genome in cheapest + costliest:  # genomes of the space: the bounds are attained
        assert all(value in choices[name] for name, value in genome.to_params().items())
    low, high = [_cost(g) for g in cheapest], [_cost(g) for g in costliest]
    min_macs, max_macs = min(m for m, _ in low), max(m for m, _ in high)
    min_params, max_params = min(p for _, p in low), max(p for _, p in high)
    rng = random.Random(5)
    for genome in [_random_genome(rng) for _ in range(60)]:
        macs, params = _cost(genome)
        assert min_macs <= macs <= max_macs and min_params <= params <= max_params, genome.key()
    # The count from shapes is what the cost module measures.
    net = build_network(cheapest[0], 2).deploy()
    assert count_macs(net, (64, 64), 2) == _cost(cheapest[0])[0] * 32 * 32


def test_subpixel_kernel_of_fsrcnns_deconvolution() -> None:
    assert [subpixel_kernel(9, s, 4) for s in (1, 2, 3, 4)] == [9, 5, 5, 3]


def test_seeds_are_choices_of_the_space() -> None:
    choices = gene_choices()
    for scale in (1, 2, 3, 4):
        seeds = baseline_seed_genomes(scale)
        assert len(seeds) == 2 and len({g.key() for g in seeds}) == 2
        for genome in seeds:
            params = genome.to_params()
            assert all(value in choices[name] for name, value in params.items()), params
            study = optuna.create_study()
            study.enqueue_trial(params)
            assert sample_genome(study.ask()) == genome


@torch.no_grad()
def _deconv_as_subpixel(deconv: nn.ConvTranspose2d, conv: nn.Conv2d, scale: int) -> None:
    """Writes into `conv` (followed by a pixel shuffle) the weights of `deconv`."""
    reach, pad = conv.kernel_size[0] // 2, deconv.padding[0]
    taps = deconv.kernel_size[0]
    conv.weight.zero_()
    for c in range(deconv.out_channels):
        for py in range(scale):
            for px in range(scale):
                channel = c * scale * scale + py * scale + px
                conv.bias[channel] = deconv.bias[c]
                for dy in range(-reach, reach + 1):
                    for dx in range(-reach, reach + 1):
                        ky, kx = py + pad - scale * dy, px + pad - scale * dx
                        if 0 <= ky < taps and 0 <= kx < taps:
                            conv.weight[channel, :, reach + dy, reach + dx] = \
                                deconv.weight[:, c, ky, kx]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_seeds_hold_the_handcrafted_networks(scale: int) -> None:
    """Trained ESPCN and FSRCNN weights written into the seeds give the same outputs: the
    space holds both nets (FSRCNN's deconvolution as a sub-pixel conv)."""
    torch.manual_seed(scale)
    espcn_seed, fsrcnn_seed = (build_network(g, scale).eval()
                               for g in baseline_seed_genomes(scale))
    espcn, fsrcnn = HANDCRAFTED.get("espcn")(scale).eval(), HANDCRAFTED.get("fsrcnn")(scale).eval()
    for net in (espcn, fsrcnn):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    x = torch.rand(1, 3, 14, 11)
    layers = list(espcn.body)
    pairs = [(espcn_seed.stem[0], layers[0]), (espcn_seed.stem[2], layers[2]),
             (espcn_seed.tail[0], layers[4])]
    for mine, theirs in pairs:
        mine.load_state_dict(theirs.state_dict())
    assert count_macs(espcn_seed, (1280, 720), scale) == count_macs(espcn, (1280, 720), scale)
    with torch.no_grad():
        assert torch.allclose(espcn_seed(x), espcn(x), atol=1e-6)

    layers = list(fsrcnn.body)
    mine_layers = [*fsrcnn_seed.stem, *(m for block in fsrcnn_seed.body for m in block.deploy()),
                   *fsrcnn_seed.tail[:2]]
    assert len(mine_layers) == len(layers) - 1
    for mine, theirs in zip(mine_layers, layers, strict=False):
        mine.load_state_dict(theirs.state_dict())
    _deconv_as_subpixel(layers[-1], fsrcnn_seed.output_conv, scale)
    with torch.no_grad():
        assert torch.allclose(fsrcnn_seed(x), fsrcnn(x), atol=1e-5)


@pytest.mark.parametrize("name", ["espcn", "fsrcnn", "edsr"])
@pytest.mark.parametrize("scale", [1, 3])
def test_handcrafted_shapes(name: str, scale: int) -> None:
    net = HANDCRAFTED.get(name)(scale) if name != "edsr" else HANDCRAFTED.get(name)(scale)
    assert net(torch.rand(1, 3, 9, 11)).shape == (1, 3, 9 * scale, 11 * scale)
