"""Cost of a network as deployed: MACs of one output frame, parameters, measured latency.

MACs come from torch.utils.flop_counter on a small probe input and are scaled to the stated
output resolution: every layer here is a same-padded convolution (or pixel shuffle), whose cost
is exactly proportional to the pixel count. Latency is measured, not derived: tiny networks do
not speed up in line with their MACs (per-layer overhead dominates).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

_PROBE_SIDE = 32  # input pixels per side of the MACs probe


def input_size(resolution: tuple[int, int], scale: int) -> tuple[int, int]:
    """(width, height) of the input that yields a `resolution` output at `scale`."""
    width, height = resolution
    return max(1, round(width / scale)), max(1, round(height / scale))


@torch.no_grad()
def count_macs(net: nn.Module, resolution: tuple[int, int], scale: int) -> int:
    """Multiply-accumulates of one output frame of `resolution` (width, height)."""
    net = net.eval()
    probe = torch.zeros(1, 3, _PROBE_SIDE, _PROBE_SIDE)
    with FlopCounterMode(display=False) as counter:
        net(probe)
    macs_per_input_pixel = counter.get_total_flops() / 2 / (_PROBE_SIDE * _PROBE_SIDE)
    in_w, in_h = resolution[0] / scale, resolution[1] / scale
    return int(round(macs_per_input_pixel * in_w * in_h))


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Temporarily run torch with `n` intra-op threads (the setting is process-wide)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Latency:
    min_ms: float
    median_ms: float
    runs: int
    threads: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@torch.no_grad()
def measure_latency(
    net: nn.Module, resolution: tuple[int, int], scale: int, runs: int = 5, threads: int = 1,
) -> Latency:
    """Wall time of one output frame on the CPU: one warm-up, then `runs` timed passes."""
    if runs < 5:
        raise ValueError("measure at least 5 runs: a minimum of fewer is noise")
    net = net.eval()
    in_w, in_h = input_size(resolution, scale)
    frame = torch.rand(1, 3, in_h, in_w)
    timings: list[float] = []
    with torch_threads(threads), torch.inference_mode():
        net(frame)
        for _ in range(runs):
            start = time.perf_counter()
            net(frame)
            timings.append((time.perf_counter() - start) * 1000.0)
    return Latency(min(timings), statistics.median(timings), runs, threads)


@dataclass(frozen=True)
class Cost:
    macs: int
    params: int
    latency: Latency | None

    def to_dict(self) -> dict[str, object]:
        return {
            "macs": self.macs,
            "params": self.params,
            "latency_ms": self.latency.median_ms if self.latency else None,
            "latency_min_ms": self.latency.min_ms if self.latency else None,
        }


def deployed(net: nn.Module) -> nn.Module:
    """The inference form of a network (re-parameterizable blocks collapsed)."""
    deploy = getattr(net, "deploy", None)
    return deploy() if callable(deploy) else net.eval()


def measure_cost(
    net: nn.Module, resolution: tuple[int, int], scale: int, with_latency: bool = True,
) -> Cost:
    """MACs, params and latency of `net` as deployed."""
    net = deployed(net)
    latency = measure_latency(net, resolution, scale) if with_latency else None
    return Cost(count_macs(net, resolution, scale), count_params(net), latency)
