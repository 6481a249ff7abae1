"""Checkpoints of trained networks: weights plus what it takes to rebuild the network
(a searched genome or a handcrafted name, and the scale), so previews, full training and
exports can pick up any trial or baseline of a search."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.nets.builder import build_network
from engine.nets.genome import Genome
from engine.nets.handcrafted import HANDCRAFTED
from engine.safe_files import write_bytes_atomic


def checkpoint_path(out_dir: str | Path, name: str) -> Path:
    """`<out_dir>/checkpoints/<name>.pt`, e.g. name 'trial-12' or 'baseline-espcn'."""
    return Path(out_dir) / "checkpoints" / f"{name}.pt"


def state_path(state_dir: Path, candidate: int, rung: int) -> Path:
    """The constant-rate training state a search candidate left at `rung` (see
    engine.train.trainer.train's `stable_state`): promotions and full training continue it."""
    return Path(state_dir) / f"candidate-{candidate}-rung{rung}.pt"


def partial_state_path(state_dir: Path, genome_key: str, rung: int) -> Path:
    """Mid-rung progress of a genome's training to `rung` (engine.train.trainer.train's
    `state_file`): an evaluation cut short by a killed worker or a cancel continues from it.
    Keyed by the genome, not the trial: a killed candidate comes back as a new trial."""
    digest = hashlib.sha1(genome_key.encode()).hexdigest()[:16]
    return Path(state_dir) / f"partial-{digest}-rung{rung}.pt"


def latest_state(out_dir: str | Path, candidate: int) -> Path | None:
    """The state of a candidate's highest rung in a search's output folder, if any."""
    found = sorted(Path(out_dir, "states").glob(f"candidate-{candidate}-rung*.pt"),
                   key=lambda p: int(p.stem.rsplit("rung", 1)[1]))
    return found[-1] if found else None


def save_checkpoint(path: Path, net: nn.Module, scale: int, meta: dict[str, Any]) -> Path:
    """Atomic write (temp file + rename): a reader never sees half a checkpoint; a full disk
    raises engine.safe_files.DiskFull and leaves nothing."""
    genome = getattr(net, "genome", None)
    payload = {
        "format": 1,
        "scale": scale,
        "genome": genome.to_dict() if isinstance(genome, Genome) else None,
        "handcrafted": meta.get("handcrafted"),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "meta": meta,
    }
    return save_atomic(payload, path)


def save_atomic(payload: Any, path: Path) -> Path:
    """torch.save, complete or not at all: serialized in memory first (the networks are
    small), so a full disk fails a plain file write with DiskFull, not torch's 'unexpected
    pos', and the temporary file goes (engine.safe_files.write_atomic)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return write_bytes_atomic(Path(path), buffer.getbuffer())


def build_from_checkpoint(payload: dict[str, Any]) -> nn.Module:
    scale = int(payload["scale"])
    if payload.get("genome"):
        net = build_network(Genome.from_dict(payload["genome"]), scale)
    elif payload.get("handcrafted"):
        net = HANDCRAFTED.get(payload["handcrafted"])(scale)
    else:
        raise ValueError("checkpoint names neither a genome nor a handcrafted network")
    net.load_state_dict(payload["state_dict"])
    return net.eval()


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The trained network (training form, eval mode) and the checkpoint's payload."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    return build_from_checkpoint(payload), payload
