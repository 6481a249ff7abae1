"""Export a trained checkpoint as a deployable bundle: ONNX + TorchScript + model card, in a zip.

The network is exported in its inference form: re-parameterizable blocks collapsed, and the
global residual's bicubic upsampling as a fixed convolution (fast_residual.py; ONNX Runtime's
cubic Resize alone took ~0.5 s per 720p frame). Both artifacts are checked against the PyTorch
network itself before the bundle is written: ONNX Runtime (CPU) on random
inputs and on real (degraded) frames within 1e-4, the reloaded TorchScript within 1e-5. A bundle
that exists has passed those checks; its card states the figures.

The ONNX graph comes from torch.onnx.export's dynamo-based exporter (the default in torch 2.x),
with dynamic batch, height and width; should a network not export with dynamic shapes, it is
exported for the fixed input size of `resolution` and the card says so.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import nn

from engine.data.enhancement import make_task
from engine.data.video_io import probe, read_frames, sample_indices
from engine.deploy.fast_residual import export_form
from engine.safe_files import write_atomic
from engine.train.checkpoint import load_checkpoint
from engine.train.cost import count_macs, count_params, deployed, input_size, measure_latency

ONNX_OPSET = 18
ONNX_TOLERANCE = 1e-4  # max abs difference, ONNX Runtime vs PyTorch, outputs in [0, 1] units
TORCHSCRIPT_TOLERANCE = 1e-5
INPUT_NAME, OUTPUT_NAME = "input", "output"
BUNDLE_FILES = ("model.onnx", "model.torchscript.pt", "model_card.json", "MODEL_CARD.md")
_MAX_SIDE = 8192


class ExportError(ValueError):
    """The checkpoint cannot be exported, or an exported artifact disagrees with PyTorch."""


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's chatter (graph-pass INFO logs, torchvision-missing notices, and
    torch.jit's deprecation warnings); errors still raise."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _load(checkpoint: Path) -> tuple[nn.Module, dict[str, Any]]:
    if not checkpoint.is_file():
        raise ExportError(f"checkpoint not found: {checkpoint}")
    try:
        return load_checkpoint(checkpoint)
    except Exception as error:  # unpickling, missing keys, wrong state dict: all "not one"
        raise ExportError(
            f"{checkpoint} is not a readable checkpoint ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no detail'})"
        ) from error


def _export_onnx(net: nn.Module, path: Path, fixed_shape: tuple[int, ...]) -> dict[str, Any]:
    """Dynamic N/H/W when the exporter manages it, else `fixed_shape`. Returns what was done."""
    common = dict(input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                  opset_version=ONNX_OPSET, dynamo=True, external_data=False, verbose=False)
    # A batch of 2 as the example: torch.export specializes dimensions whose example is 0 or 1.
    example = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    dims = {0: torch.export.Dim("batch", min=1, max=256),
            2: torch.export.Dim("height", min=2, max=_MAX_SIDE),
            3: torch.export.Dim("width", min=2, max=_MAX_SIDE)}
    try:
        torch.onnx.export(net, (example,), str(path), dynamic_shapes=(dims,), **common)
        return {"dynamic_shapes": True, "fixed_input_shape": None}
    except Exception as dynamic_error:  # fall back, and say why on the card
        reason = f"{type(dynamic_error).__name__}: {str(dynamic_error).splitlines()[0]}"
    try:
        torch.onnx.export(net, (torch.rand(*fixed_shape),), str(path), **common)
    except Exception as error:
        raise ExportError(f"ONNX export failed: {type(error).__name__}: {error}") from error
    return {"dynamic_shapes": False, "fixed_input_shape": list(fixed_shape),
            "dynamic_export_failure": reason}


def export_onnx(net: nn.Module, path: Path,
                fixed_shape: tuple[int, ...] = (1, 3, 360, 640)) -> dict[str, Any]:
    """Export a deployed `net` (in its export form) to the ONNX file `path`, quietly; dynamic
    N/H/W when possible, else `fixed_shape`. Returns what was done (as on the card)."""
    with _quiet():
        return _export_onnx(export_form(net), Path(path), fixed_shape)


def _real_frames(clip: Path | None, task_name: str | None,
                 clip_name: str | None = None) -> tuple[torch.Tensor, str]:
    """Two frames of `clip` (degraded by the task when given) or a smooth synthetic image;
    the label names the clip `clip_name` (its owner's name for it) when given."""
    if clip is None:
        ys, xs = np.mgrid[0:48, 0:64].astype(np.float32)
        image = np.stack([0.5 + 0.4 * np.sin(xs / 7.0), 0.5 + 0.4 * np.cos(ys / 5.0),
                          0.5 + 0.4 * np.sin((xs + ys) / 11.0)])
        return torch.from_numpy(image[None].astype(np.float32)), "synthetic 64x48 gradient"
    info = probe(clip)
    frames = read_frames(clip, sample_indices(info.frame_count, 2))
    rng = np.random.default_rng(0)
    if task_name:
        task = make_task(task_name)
        inputs = [task.degrade(task.target(f), rng) for f in frames]
    else:
        inputs = [f.astype(np.float32) / 255.0 for f in frames]
    batch = np.stack([np.ascontiguousarray(x.transpose(2, 0, 1)) for x in inputs])
    described = f"{len(frames)} frames of {clip_name or Path(clip).name}"
    return torch.from_numpy(batch.astype(np.float32)), (
        described + (f" degraded by {task_name}" if task_name else ""))


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        raise ExportError(f"output shapes differ: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


@torch.no_grad()
def _parity(net: nn.Module, onnx_path: Path, ts_path: Path,
            random_inputs: Sequence[torch.Tensor], real: torch.Tensor) -> dict[str, Any]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    scripted = torch.jit.load(str(ts_path), map_location="cpu").eval()
    figures: dict[str, Any] = {}
    for label, inputs in (("random", list(random_inputs)), ("real", [real])):
        onnx_diff = ts_diff = 0.0
        for x in inputs:
            reference = net(x).numpy()
            onnx_out = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
            onnx_diff = max(onnx_diff, _max_diff(onnx_out, reference))
            ts_diff = max(ts_diff, _max_diff(scripted(x).numpy(), reference))
        figures[f"onnx_max_abs_diff_{label}"] = onnx_diff
        figures[f"torchscript_max_abs_diff_{label}"] = ts_diff
    figures["random_input_shapes"] = [list(x.shape) for x in random_inputs]
    figures["real_input_shape"] = list(real.shape)
    figures["onnx_tolerance"] = ONNX_TOLERANCE
    figures["torchscript_tolerance"] = TORCHSCRIPT_TOLERANCE
    onnx_worst = max(figures["onnx_max_abs_diff_random"], figures["onnx_max_abs_diff_real"])
    ts_worst = max(figures["torchscript_max_abs_diff_random"],
                   figures["torchscript_max_abs_diff_real"])
    if onnx_worst > ONNX_TOLERANCE:
        raise ExportError(f"ONNX Runtime disagrees with PyTorch: max abs difference "
                          f"{onnx_worst:.3g} > {ONNX_TOLERANCE:g}")
    if ts_worst > TORCHSCRIPT_TOLERANCE:
        raise ExportError(f"reloaded TorchScript disagrees with PyTorch: max abs difference "
                          f"{ts_worst:.3g} > {TORCHSCRIPT_TOLERANCE:g}")
    return figures


def _onnx_ops(path: Path) -> dict[str, int]:
    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    return dict(sorted(Counter(node.op_type for node in model.graph.node).items()))


def render_markdown(card: dict[str, Any]) -> str:
    """The human-readable MODEL_CARD.md of a card dict."""
    io = card["io"]
    latency = card["latency_ms"]
    parity = card["parity"]
    arch = card["genome"] if card["genome"] else f"handcrafted `{card['handcrafted']}`"
    lines = [
        f"# {card['name']}", "",
        f"- Architecture: `{card['architecture']}`",
        f"- Task: {card['task'] or 'not stated'}; scale x{card['scale']}",
        f"- Definition: {json.dumps(arch) if card['genome'] else arch}",
        f"- MACs per output frame at {card['resolution'][0]}x{card['resolution'][1]}: "
        f"{card['macs']:,}",
        f"- Parameters (deployed): {card['params']:,}",
        f"- CPU latency, 1 thread: median {latency['median']:.2f} ms, min {latency['min']:.2f} ms"
        f" ({latency['runs']} runs)",
        "", "## Input / output", "",
        f"- Input `{io['input']['name']}`: {io['input']['layout']} {io['input']['dtype']} "
        f"{io['input']['color']} in {io['input']['range']}; shape {io['input']['shape']}",
        f"- Output `{io['output']['name']}`: {io['output']['layout']} {io['output']['dtype']}, "
        f"shape {io['output']['shape']} (clip to [0, 1] for display)",
    ]
    if not card["onnx"]["dynamic_shapes"]:
        lines.append(f"- The ONNX model is exported for the fixed input shape "
                     f"{card['onnx']['fixed_input_shape']} (dynamic export failed: "
                     f"{card['onnx'].get('dynamic_export_failure')})")
    if card["metrics"]:
        lines += ["", "## Metrics", ""]
        lines += [f"- {key}: {value}" for key, value in card["metrics"].items()]
    lines += [
        "", "## Verification", "",
        f"- ONNX Runtime (CPU) vs PyTorch, max abs difference: random "
        f"{parity['onnx_max_abs_diff_random']:.3g}, real {parity['onnx_max_abs_diff_real']:.3g}"
        f" (tolerance {parity['onnx_tolerance']:g}; real = {parity['real_input']})",
        f"- Reloaded TorchScript vs PyTorch: random "
        f"{parity['torchscript_max_abs_diff_random']:.3g}, real "
        f"{parity['torchscript_max_abs_diff_real']:.3g} "
        f"(tolerance {parity['torchscript_tolerance']:g})",
        "", "## Export", "",
        f"- ONNX opset {card['onnx']['opset']}, ops: "
        + ", ".join(f"{op} x{n}" for op, n in card["onnx"]["ops"].items()),
        f"- torch {card['versions']['torch']}, onnxruntime {card['versions']['onnxruntime']}, "
        f"onnx {card['versions']['onnx']}",
        f"- Exported {card['exported_at']} in {card['export_seconds']:.1f} s",
        "",
    ]
    return "\n".join(lines)


def _write_zip(out: Path, files: dict[str, Path | str]) -> None:
    """Atomic: a failure (DiskFull on a full disk) leaves no temp file and no new folder."""

    def write(target: BinaryIO) -> None:
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            for name, content in files.items():
                if isinstance(content, Path):
                    bundle.write(content, name)
                else:
                    bundle.writestr(name, content)

    write_atomic(out, write)


def export_bundle(
    checkpoint: Path,
    out: Path,
    *,
    task_name: str | None = None,
    clip: Path | None = None,
    clip_name: str | None = None,
    resolution: tuple[int, int] = (1280, 720),
    card_extra: dict | None = None,
    latency_runs: int = 5,
) -> dict[str, Any]:
    """Export `checkpoint` to the zip `out` (model.onnx, model.torchscript.pt, model_card.json,
    MODEL_CARD.md) after checking both artifacts against PyTorch; returns the card."""
    import onnx
    import onnxruntime as ort

    started = time.perf_counter()
    checkpoint, out = Path(checkpoint), Path(out)
    trained, payload = _load(checkpoint)
    scale = int(payload["scale"])
    meta = payload.get("meta") or {}
    task_name = task_name or meta.get("task")
    if task_name:
        task = make_task(task_name)  # UnknownNameError lists the valid names
        if task.scale != scale:
            raise ExportError(f"task {task_name} is x{task.scale} but the checkpoint's network "
                              f"is x{scale}")
    net = deployed(trained).cpu().eval()
    for p in net.parameters():
        p.requires_grad_(False)

    in_w, in_h = input_size(resolution, scale)
    real, real_label = _real_frames(Path(clip) if clip else None, task_name, clip_name)
    with tempfile.TemporaryDirectory(prefix="export-") as tmp_dir:
        tmp = Path(tmp_dir)
        onnx_path, ts_path = tmp / "model.onnx", tmp / "model.torchscript.pt"
        onnx_info = export_onnx(net, onnx_path, (1, 3, in_h, in_w))
        generator = torch.Generator().manual_seed(1)
        if onnx_info["dynamic_shapes"]:
            shapes: list[tuple[int, ...]] = [(1, 3, 32, 32), (2, 3, 37, 53)]
        else:
            shapes = [(1, 3, in_h, in_w)]
            real = torch.nn.functional.interpolate(real[:1], size=(in_h, in_w), mode="area")
        randoms = [torch.rand(*s, generator=generator) for s in shapes]
        with _quiet(), torch.no_grad():
            traced = torch.jit.trace(export_form(net), (randoms[0],), check_trace=False)
            torch.jit.save(traced, str(ts_path))
            # Against `net` itself, not its export form: the check proves the two equal.
            parity = _parity(net, onnx_path, ts_path, randoms, real)
        parity["real_input"] = real_label
        ops = _onnx_ops(onnx_path)

        latency = measure_latency(net, resolution, scale, runs=latency_runs, threads=1)
        genome = payload.get("genome")
        handcrafted = payload.get("handcrafted") or meta.get("handcrafted")
        architecture = genome["key"] if genome else handcrafted
        io_shape = "[N, 3, H, W]" if onnx_info["dynamic_shapes"] else str([1, 3, in_h, in_w])
        out_shape = (f"[N, 3, {scale}*H, {scale}*W]" if onnx_info["dynamic_shapes"]
                     else str([1, 3, in_h * scale, in_w * scale]))
        card: dict[str, Any] = {
            "name": f"{architecture} x{scale}" + (f" ({task_name})" if task_name else ""),
            "architecture": architecture,
            "genome": genome,
            "handcrafted": None if genome else handcrafted,
            "task": task_name,
            "scale": scale,
            "checkpoint": checkpoint.name,
            "checkpoint_meta": {k: v for k, v in meta.items()
                                if isinstance(v, str | int | float | bool) or v is None},
            "metrics": dict(card_extra or {}),
            "resolution": list(resolution),
            "macs": count_macs(net, resolution, scale),
            "params": count_params(net),
            "latency_ms": {"median": latency.median_ms, "min": latency.min_ms,
                           "runs": latency.runs, "threads": latency.threads,
                           "input": [in_w, in_h]},
            "io": {
                "input": {"name": INPUT_NAME, "layout": "NCHW", "dtype": "float32",
                          "color": "RGB", "range": [0.0, 1.0], "shape": io_shape},
                "output": {"name": OUTPUT_NAME, "layout": "NCHW", "dtype": "float32",
                           "color": "RGB", "range": "about [0, 1]; clip before display",
                           "shape": out_shape, "scale": scale},
            },
            "onnx": {"file": "model.onnx", "opset": ONNX_OPSET, "ops": ops, **onnx_info},
            "torchscript": {"file": "model.torchscript.pt", "method": "torch.jit.trace"},
            "parity": parity,
            "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__,
                         "onnx": onnx.__version__},
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        card["export_seconds"] = round(time.perf_counter() - started, 2)
        _write_zip(out, {
            "model.onnx": onnx_path,
            "model.torchscript.pt": ts_path,
            "model_card.json": json.dumps(card, indent=2, default=str) + "\n",
            "MODEL_CARD.md": render_markdown(card),
        })
    return card
