"""The architecture encoding: a fixed-length genome.

stem conv (k x k, 3 -> stem channels) -> [shrink conv to `width`] -> `depth` body blocks at
`width` -> [1 x 1 expand back to the stem channels] -> tail conv to 3*s^2 -> pixel shuffle,
plus the global residual. With a stem no wider than the body there is neither shrink nor
expand: that is the original SRVGG-style template, and the default of every newer gene, so
genomes stored before those genes existed rebuild exactly their old network.

Every genome has MAX_BLOCKS block slots (op + kernel each) whatever its depth, so NSGA-II's
crossover swaps like with like; only the first `depth` slots are expressed, and the shrink
kernel and expand genes only with a stem wider than the body. `key()` names the expressed
architecture, so two genomes that differ only in unexpressed genes are duplicates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MAX_BLOCKS = 8
# Fillers of the slots a shorter genome lacks (those of the 6-slot space): unexpressed there,
# and valid choices of the space, so `to_params()` of an old genome can be enqueued.
FILL_OP, FILL_KERNEL = "conv", 3
# Genes added after the first space, with the values that express the original template.
NEWER_GENES: dict[str, Any] = {
    "stem_kernel": 3, "stem_width": 0, "shrink_kernel": 1, "expand": False, "tail_kernel": 3,
}


@dataclass(frozen=True)
class Genome:
    width: int  # channels of the body blocks (and of the stem, unless stem_width is wider)
    depth: int  # expressed body blocks (0..MAX_BLOCKS)
    ops: tuple[str, ...]  # MAX_BLOCKS op names (see engine.nets.ops.OPS)
    kernels: tuple[int, ...]  # MAX_BLOCKS kernel sizes
    activation: str = "prelu"
    global_residual: bool = True  # output = net(x) + upsampled x
    stem_kernel: int = 3
    stem_width: int = 0  # wider than `width`: a wide stem then a shrink conv; else unused
    shrink_kernel: int = 1  # the shrink conv stem_width -> width (only with a wider stem)
    expand: bool = False  # 1x1 conv width -> stem_width before the tail (only with a wider stem)
    tail_kernel: int = 3

    def __post_init__(self) -> None:
        if len(self.ops) != MAX_BLOCKS or len(self.kernels) != MAX_BLOCKS:
            raise ValueError(f"a genome has exactly {MAX_BLOCKS} op and kernel slots")
        if not (0 <= self.depth <= MAX_BLOCKS):
            raise ValueError(f"depth must be in 0..{MAX_BLOCKS}, got {self.depth}")
        if self.width < 1 or self.stem_width < 0:
            raise ValueError(f"widths must be positive, got {self.width} / {self.stem_width}")
        for name in ("stem_kernel", "shrink_kernel", "tail_kernel"):
            kernel = getattr(self, name)
            if kernel < 1 or kernel % 2 == 0:  # same padding needs an odd kernel
                raise ValueError(f"{name} must be odd and positive, got {kernel}")

    @property
    def blocks(self) -> list[tuple[str, int]]:
        """The expressed (op, kernel) pairs."""
        return list(zip(self.ops[: self.depth], self.kernels[: self.depth], strict=True))

    @property
    def shrinks(self) -> bool:
        """A stem wider than the body, followed by a shrink conv."""
        return self.stem_width > self.width

    @property
    def expands(self) -> bool:
        return self.shrinks and self.expand

    @property
    def stem_channels(self) -> int:
        return self.stem_width if self.shrinks else self.width

    @property
    def tail_channels(self) -> int:
        """Input channels of the tail conv."""
        return self.stem_width if self.expands else self.width

    def key(self) -> str:
        """Canonical name of the expressed architecture (dedup key, human readable).

        Genomes of the original template keep their original names (`w12_conv3-conv3_prelu+res`);
        newer genes appear only where they change the network, e.g.
        `w12_stem5x56-shrink1_conv3-conv3_expand_tail5_prelu+res`, and `none` is an empty body.
        """
        parts = [f"w{self.width}"]
        if self.shrinks:
            parts.append(f"stem{self.stem_kernel}x{self.stem_width}-shrink{self.shrink_kernel}")
        elif self.stem_kernel != NEWER_GENES["stem_kernel"]:
            parts.append(f"stem{self.stem_kernel}")
        parts.append("-".join(f"{op}{k}" for op, k in self.blocks) or "none")
        if self.expands:
            parts.append("expand")
        if self.tail_kernel != NEWER_GENES["tail_kernel"]:
            parts.append(f"tail{self.tail_kernel}")
        parts.append(self.activation + ("+res" if self.global_residual else ""))
        return "_".join(parts)

    def to_params(self) -> dict[str, Any]:
        """Flat Optuna parameters (one per gene; the global residual is not searched)."""
        params: dict[str, Any] = {
            "width": self.width, "depth": self.depth, "activation": self.activation,
        }
        for i in range(MAX_BLOCKS):
            params[f"op_{i}"] = self.ops[i]
            params[f"kernel_{i}"] = self.kernels[i]
        params.update({gene: getattr(self, gene) for gene in NEWER_GENES})
        return params

    @classmethod
    def from_params(cls, params: dict[str, Any], global_residual: bool = True) -> Genome:
        """From Optuna params, those of older spaces included (fewer slots, no newer genes)."""
        slots = 0
        while f"op_{slots}" in params:
            slots += 1
        return cls.from_dict({
            "width": params["width"], "depth": params["depth"],
            "activation": params["activation"], "global_residual": global_residual,
            "ops": [params[f"op_{i}"] for i in range(slots)],
            "kernels": [params[f"kernel_{i}"] for i in range(slots)],
            **{gene: params[gene] for gene in NEWER_GENES if gene in params},
        })

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ops"] = list(self.ops)
        data["kernels"] = list(self.kernels)
        data["key"] = self.key()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Genome:
        """From `to_dict()`, also of older genomes: missing slots (beyond the expressed ones)
        are filled, missing newer genes take the values of the original template."""
        depth = int(data["depth"])
        ops, kernels = list(data["ops"]), [int(k) for k in data["kernels"]]
        if len(ops) != len(kernels) or len(ops) < depth:
            raise ValueError(f"a genome of depth {depth} needs {depth} ops and kernels, got "
                             f"{len(ops)} and {len(kernels)}")
        missing = MAX_BLOCKS - len(ops)  # negative: too many slots, refused by __post_init__
        return cls(
            width=int(data["width"]),
            depth=depth,
            ops=tuple(str(op) for op in ops) + (FILL_OP,) * missing,
            kernels=tuple(kernels) + (FILL_KERNEL,) * missing,
            activation=str(data.get("activation", "prelu")),
            global_residual=bool(data.get("global_residual", True)),
            stem_kernel=int(data.get("stem_kernel", NEWER_GENES["stem_kernel"])),
            stem_width=int(data.get("stem_width", NEWER_GENES["stem_width"])),
            shrink_kernel=int(data.get("shrink_kernel", NEWER_GENES["shrink_kernel"])),
            expand=bool(data.get("expand", NEWER_GENES["expand"])),
            tail_kernel=int(data.get("tail_kernel", NEWER_GENES["tail_kernel"])),
        )

    @classmethod
    def uniform(
        cls, width: int, depth: int, op: str = "conv", kernel: int = 3,
        activation: str = "prelu", global_residual: bool = True, **genes: Any,
    ) -> Genome:
        """A genome with the same op in every slot (handy for tests and references); `genes`
        sets the stem, shrink, expand and tail genes by name."""
        return cls(width, depth, (op,) * MAX_BLOCKS, (kernel,) * MAX_BLOCKS, activation,
                   global_residual, **genes)
