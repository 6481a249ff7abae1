"""The search space, in exactly one place: gene choices, `sample_genome(trial)`, the seeds.

The space contains its baselines: ESPCN is one of its genomes exactly, and FSRCNN up to its
transposed-convolution tail, whose sub-pixel equivalent it holds (`baseline_seed_genomes`),
so a search that starts from them can only end at or above them. Also the corners of the
space (`extreme_genomes`), from which engine.search.space_bounds derives the cost bounds.
"""

from __future__ import annotations

from typing import Any, Protocol

from engine.nets.genome import MAX_BLOCKS, Genome
from engine.nets.ops import make_activation

# Bump whenever a choice below changes: Optuna refuses a parameter whose choices differ from
# those already stored in a study, so a study of another version cannot be resumed.
SPACE_VERSION = 2

WIDTHS: tuple[int, ...] = (8, 12, 16, 24, 32)  # body channels (wide stems: STEM_WIDTHS)
DEPTHS: tuple[int, ...] = tuple(range(0, MAX_BLOCKS + 1))  # 0: no body (ESPCN's shape)
OP_NAMES: tuple[str, ...] = ("conv", "dwsep", "residual", "repconv")
KERNELS: tuple[int, ...] = (3, 5)
ACTIVATION_NAMES: tuple[str, ...] = ("relu", "lrelu", "prelu", "tanh")
STEM_KERNELS: tuple[int, ...] = (3, 5)
# 0 (and any width not above the body's): the stem has the body's width, no shrink/expand.
# 56 is FSRCNN's feature width.
STEM_WIDTHS: tuple[int, ...] = (0, 16, 24, 32, 48, 56, 64)
SHRINK_KERNELS: tuple[int, ...] = (1, 3)  # 1: FSRCNN's shrink; 3: ESPCN's second layer
EXPANDS: tuple[bool, ...] = (False, True)
TAIL_KERNELS: tuple[int, ...] = (3, 5)  # 5 holds FSRCNN's 9x9 stride-2/3 deconvolution


def gene_choices() -> dict[str, tuple[Any, ...]]:
    """Every Optuna parameter of the space and its categorical choices."""
    genes: dict[str, tuple[Any, ...]] = {
        "width": WIDTHS, "depth": DEPTHS, "activation": ACTIVATION_NAMES,
    }
    for i in range(MAX_BLOCKS):
        genes[f"op_{i}"] = OP_NAMES
        genes[f"kernel_{i}"] = KERNELS
    genes.update({
        "stem_kernel": STEM_KERNELS, "stem_width": STEM_WIDTHS,
        "shrink_kernel": SHRINK_KERNELS, "expand": EXPANDS, "tail_kernel": TAIL_KERNELS,
    })
    return genes


class SuggestsCategorical(Protocol):
    """The part of optuna.Trial the space needs (kept as a protocol for testing)."""

    def suggest_categorical(self, name: str, choices: tuple) -> object: ...


def sample_genome(trial: SuggestsCategorical) -> Genome:
    """Every gene is categorical: Optuna stores only these params, so any trial is rebuilt
    from `trial.params` alone. All genes are sampled, expressed or not (fixed length)."""
    params = {name: trial.suggest_categorical(name, choices)
              for name, choices in gene_choices().items()}
    return Genome.from_params(params)


def subpixel_kernel(kernel: int, stride: int, padding: int) -> int:
    """The smallest odd kernel of a sub-pixel conv (conv on the input + pixel shuffle by
    `stride`) that can compute a transposed conv (`kernel`, `stride`, `padding`) exactly.

    Output s*q + p of the transposed conv reads input q + (p + padding - t) / s for every tap
    t where that is an integer: the reach is the largest such offset.
    """
    reach = max(abs(phase + padding - tap) // stride
                for phase in range(stride) for tap in range(kernel)
                if (phase + padding - tap) % stride == 0)
    return 2 * reach + 1


def _nearest_choice(value: int, choices: tuple[int, ...]) -> int:
    """The smallest choice at least `value`, else the largest (the closest the space gets)."""
    return min((c for c in choices if c >= value), default=max(choices))


BASELINE_SEED_NAMES = ("espcn", "fsrcnn")  # the order of baseline_seed_genomes


def baseline_seed_genomes(scale: int) -> list[Genome]:
    """The genomes of the space nearest to ESPCN and to FSRCNN(56, 12, 4) (engine.nets.
    handcrafted), to seed a search's first generation (`study.enqueue_trial(g.to_params())`).

    ESPCN: 5x5 3->64 tanh, 3x3 64->32 tanh, 3x3 32->3s^2, shuffle: exactly a stem with a
    shrink and no body. FSRCNN: 5x5 3->56 PReLU, 1x1 shrink to 12, four 3x3 at 12, 1x1 expand
    to 56, then a 9x9 transposed conv with stride s; the sub-pixel tail of the kernel that
    holds that deconvolution replaces it (5x5 at x2 and x3, 3x3 at x4): the same functions,
    at more MACs, since a sub-pixel conv also multiplies the taps a deconvolution skips
    (720p x2: 6.3 G against 5.6 G; x3: 5.0 G against 2.5 G). At x1 the 9x9 conv exceeds the
    largest tail kernel, so the seed there is only close.
    """
    slots = ("conv",) * MAX_BLOCKS, (3,) * MAX_BLOCKS
    espcn = Genome(32, 0, *slots, activation="tanh", stem_kernel=5, stem_width=64,
                   shrink_kernel=3, expand=False, tail_kernel=3)
    tail = _nearest_choice(subpixel_kernel(9, scale, 4), TAIL_KERNELS)
    fsrcnn = Genome(12, 4, *slots, activation="prelu", stem_kernel=5, stem_width=56,
                    shrink_kernel=1, expand=True, tail_kernel=tail)
    return [espcn, fsrcnn]


def _activation_params(name: str) -> int:
    return sum(p.numel() for p in make_activation(name, 1).parameters())


def extreme_genomes() -> tuple[list[Genome], list[Genome]]:
    """Candidates for the cheapest and the most expensive architecture of the space.

    Every layer's cost grows with its width and kernel, and every body block adds its own:
    the cheapest net is the narrowest, shallowest, smallest-kernel one without a shrink (a
    wider stem plus a shrink always costs more than the stem alone), with an activation
    without parameters. The costliest has every gene at its largest and PReLU: at the largest
    width no stem is wider, and a shrink + expand at a narrower width adds at most
    stem_width * width * (k^2 + 1) per pixel, far less than the body loses; the widest body
    with a shrink is a candidate all the same. Every op is tried at both corners.
    """
    def uniform(width: int, depth: int, op: str, kernel: int, activation: str,
                high: bool) -> Genome:
        pick = max if high else min
        return Genome.uniform(width, depth, op, kernel, activation,
                              stem_kernel=pick(STEM_KERNELS), stem_width=pick(STEM_WIDTHS),
                              shrink_kernel=pick(SHRINK_KERNELS), expand=pick(EXPANDS),
                              tail_kernel=pick(TAIL_KERNELS))

    leanest = min(ACTIVATION_NAMES, key=_activation_params)
    heaviest = max(ACTIVATION_NAMES, key=_activation_params)
    shrinking = max((w for w in WIDTHS if w < max(STEM_WIDTHS)), default=max(WIDTHS))
    cheapest = {g.key(): g for op in OP_NAMES
                for g in [uniform(min(WIDTHS), min(DEPTHS), op, min(KERNELS), leanest, False)]}
    costliest = {g.key(): g for op in OP_NAMES for width in (max(WIDTHS), shrinking)
                 for g in [uniform(width, max(DEPTHS), op, max(KERNELS), heaviest, True)]}
    return list(cheapest.values()), list(costliest.values())
