"""Where tensors run: `auto` means CUDA when torch sees one, else the CPU (the tested default)."""

from __future__ import annotations

import torch

from engine.config import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


class DeviceError(ConfigError):
    """A device that cannot be used here; the message says what to pass instead."""


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' or 'cpu'; 'cuda' without a GPU is an error, never a silent CPU run."""
    if name not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {name!r}: use one of {', '.join(DEVICE_CHOICES)}")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda but torch sees no CUDA device here: use --device cpu "
                          "or auto")
    return name
