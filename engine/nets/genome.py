"""The architecture encoding: a fixed-length genome.

Every genome has MAX_BLOCKS block slots (op + kernel each) whatever its depth, so NSGA-II's
crossover swaps like with like; only the first `depth` slots are expressed. `key()` names the
expressed architecture, so two genomes that differ only in unexpressed slots are duplicates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MAX_BLOCKS = 6


@dataclass(frozen=True)
class Genome:
    width: int  # channels of the stem and every body block
    depth: int  # expressed body blocks (1..MAX_BLOCKS)
    ops: tuple[str, ...]  # MAX_BLOCKS op names (see engine.nets.ops.OPS)
    kernels: tuple[int, ...]  # MAX_BLOCKS kernel sizes
    activation: str = "prelu"
    global_residual: bool = True  # output = net(x) + upsampled x

    def __post_init__(self) -> None:
        if len(self.ops) != MAX_BLOCKS or len(self.kernels) != MAX_BLOCKS:
            raise ValueError(f"a genome has exactly {MAX_BLOCKS} op and kernel slots")
        if not (1 <= self.depth <= MAX_BLOCKS):
            raise ValueError(f"depth must be in 1..{MAX_BLOCKS}, got {self.depth}")
        if self.width < 1:
            raise ValueError(f"width must be positive, got {self.width}")

    @property
    def blocks(self) -> list[tuple[str, int]]:
        """The expressed (op, kernel) pairs."""
        return list(zip(self.ops[: self.depth], self.kernels[: self.depth], strict=True))

    def key(self) -> str:
        """Canonical name of the expressed architecture (dedup key, human readable)."""
        body = "-".join(f"{op}{k}" for op, k in self.blocks)
        residual = "+res" if self.global_residual else ""
        return f"w{self.width}_{body}_{self.activation}{residual}"

    def to_params(self) -> dict[str, Any]:
        """Flat Optuna parameters (one per gene)."""
        params: dict[str, Any] = {
            "width": self.width, "depth": self.depth, "activation": self.activation,
        }
        for i in range(MAX_BLOCKS):
            params[f"op_{i}"] = self.ops[i]
            params[f"kernel_{i}"] = self.kernels[i]
        return params

    @classmethod
    def from_params(cls, params: dict[str, Any], global_residual: bool = True) -> Genome:
        return cls(
            width=int(params["width"]),
            depth=int(params["depth"]),
            ops=tuple(str(params[f"op_{i}"]) for i in range(MAX_BLOCKS)),
            kernels=tuple(int(params[f"kernel_{i}"]) for i in range(MAX_BLOCKS)),
            activation=str(params["activation"]),
            global_residual=global_residual,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ops"] = list(self.ops)
        data["kernels"] = list(self.kernels)
        data["key"] = self.key()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Genome:
        return cls(
            width=int(data["width"]),
            depth=int(data["depth"]),
            ops=tuple(data["ops"]),
            kernels=tuple(int(k) for k in data["kernels"]),
            activation=str(data.get("activation", "prelu")),
            global_residual=bool(data.get("global_residual", True)),
        )

    @classmethod
    def uniform(
        cls, width: int, depth: int, op: str = "conv", kernel: int = 3,
        activation: str = "prelu", global_residual: bool = True,
    ) -> Genome:
        """A genome with the same op in every slot (handy for tests and references)."""
        return cls(width, depth, (op,) * MAX_BLOCKS, (kernel,) * MAX_BLOCKS, activation,
                   global_residual)
