"""Command line: `python -m engine search CLIP ...` and `python -m engine probe CLIP`.

Renders the engine's progress events as a progress bar with ETA; every bad input exits
non-zero with one line that says what was wrong and what to do.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from engine.config import (
    COST_OBJECTIVES,
    QUALITY_OBJECTIVES,
    ConfigError,
    Constraints,
    Rungs,
    SearchConfig,
    TrainBudget,
    format_count,
    parse_count,
)
from engine.data.enhancement import TASKS
from engine.data.video_io import ClipError, probe
from engine.events import (
    BaselineFinished,
    BaselineProgress,
    Event,
    SearchFinished,
    SearchStarted,
    TrainingProgress,
    TrialFinished,
)
from engine.registry import UnknownNameError
from engine.search.strategies import STRATEGIES

DEFAULTS = SearchConfig(clip="")
# A lone CLI search owns the machine: use up to 2 threads (web workers run 1 thread each).
CLI_THREADS = min(2, os.cpu_count() or 1)


class ProgressBar:
    """A ProgressSink that draws a tqdm bar over counted trials."""

    def __init__(self) -> None:
        self.bar = None
        self.best: float | None = None

    def emit(self, event: Event) -> None:
        from tqdm import tqdm

        if isinstance(event, SearchStarted):
            low, high = event.macs_range
            rungs = " -> ".join(f"{s:,}" for s in event.rung_steps)
            tqdm.write(f"study {event.study_name}: {event.n_trials} candidates "
                       f"({event.already_finished} already done), rungs of {rungs} steps; "
                       f"space spans {format_count(low)}-{format_count(high)} MACs; "
                       f"train frames {event.train_frames}, eval frames {event.eval_frames}; "
                       f"device {event.device}")
            self.bar = tqdm(total=event.evaluations_planned, unit="eval", dynamic_ncols=True)
        elif isinstance(event, BaselineFinished):
            b = event.baseline
            tqdm.write(f"baseline {b['name']:>8}: {b['psnr']:.2f} dB, "
                       f"{format_count(b['macs'])} MACs"
                       + (f", {b['steps']:,} steps" if b.get("steps") else "")
                       + (" (cached)" if b.get("cached") else ""))
        elif isinstance(event, BaselineProgress) and self.bar is not None:
            self.bar.set_postfix_str(self._postfix(f"{event.name} step "
                                                   f"{event.step}/{event.steps}"), refresh=False)
        elif isinstance(event, TrainingProgress) and self.bar is not None:
            self.bar.set_postfix_str(self._postfix(f"#{event.number} step "
                                                   f"{event.step}/{event.steps}"), refresh=False)
        elif isinstance(event, TrialFinished) and self.bar is not None:
            t = event.trial
            if event.evaluations_planned:
                self.bar.total = event.evaluations_planned
            if t["state"] == "complete":
                star = " *front*" if event.on_front else ""
                rungs = " -> ".join(f"{r['psnr']:.2f}" for r in t.get("rungs", [])
                                    if "psnr" in r)
                if event.rung == len(t.get("rungs", [])) - 1 and t["rung"] == event.rung:
                    self.best = max(self.best or t["psnr"], t["psnr"])
                tqdm.write(f"trial #{t['number']:>3} rung {t['rung']} {t['arch']}: "
                           f"{rungs} dB, {format_count(t['macs'])} MACs, "
                           f"{_ms(t['latency_ms'])}{star}")
            elif t["state"] == "duplicate":
                tqdm.write(f"trial #{t['number']:>3} {t['arch']}: duplicate of "
                           f"#{t['duplicate_of']}, result reused")
            else:
                tqdm.write(f"trial #{t['number']:>3} {t['state']}: {t.get('reason', '')}")
            if event.evaluations_done:
                self.bar.n = event.evaluations_done
                self.bar.refresh()
            self.bar.set_postfix_str(self._postfix(""))
        elif isinstance(event, SearchFinished) and self.bar is not None:
            self.bar.close()

    def _postfix(self, current: str) -> str:
        best = f"best {self.best:.2f} dB" if self.best is not None else ""
        return ", ".join(p for p in (best, current) if p)


def _ms(value: float | None) -> str:
    """Latency is measured at the top rung (or the first, when it is an objective)."""
    return "latency at top rung" if value is None else f"{value:.0f} ms"


def _count(text: str) -> int:
    try:
        return parse_count(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine",
                                     description="Pixel AutoML: search tiny enhancement nets.")
    commands = parser.add_subparsers(dest="command", required=True)
    search = commands.add_parser("search", help="run a multi-objective architecture search")
    search.add_argument("clip", help="a video file or a folder of PNG frames")
    search.add_argument("--task", default=DEFAULTS.task, help=f"one of {', '.join(TASKS)}")
    search.add_argument("--trials", type=int, default=DEFAULTS.n_trials,
                        help="trained candidates to evaluate")
    search.add_argument("--strategy", default=DEFAULTS.strategy,
                        help=f"one of {', '.join(STRATEGIES)}")
    search.add_argument("--min-steps", type=int, default=DEFAULTS.rungs.min_steps,
                        help="steps of the first rung: every candidate trains this much")
    search.add_argument("--max-steps", type=int, default=DEFAULTS.rungs.max_steps,
                        help="steps of the top rung, where the front and verdicts are read")
    search.add_argument("--eta", type=int, default=DEFAULTS.rungs.eta,
                        help="rung growth: the best 1/eta of a rung continue to eta times "
                             "the steps")
    search.add_argument("--steps", type=int,
                        help="single-fidelity mode instead of rungs: every trial trains "
                             "exactly this many steps (the pre-rung search, for comparison)")
    search.add_argument("--teacher", choices=("imdn",),
                        help="distil from the pretrained prototype (SR tasks)")
    search.add_argument("--device", default=DEFAULTS.device, choices=("auto", "cpu", "cuda"),
                        help="where training, evaluation and previews run (auto: CUDA when "
                             "present)")
    search.add_argument("--batch-size", type=int, default=DEFAULTS.budget.batch_size)
    search.add_argument("--patch-size", type=int, default=DEFAULTS.budget.patch_size)
    search.add_argument("--threads", type=int, default=CLI_THREADS,
                        help="torch threads for training (also given to the baselines)")
    search.add_argument("--max-macs", type=_count, help="per output frame, e.g. 5G")
    search.add_argument("--max-params", type=_count, help="e.g. 50K")
    search.add_argument("--max-latency-ms", type=float, help="per output frame, 1 thread")
    search.add_argument("--objective", default=",".join(DEFAULTS.objectives),
                        help=f"quality,cost: quality in {'/'.join(QUALITY_OBJECTIVES)}, "
                             f"cost in {'/'.join(COST_OBJECTIVES)}")
    search.add_argument("--resolution", default="1280x720",
                        help="output WIDTHxHEIGHT at which costs are stated")
    search.add_argument("--frames", type=int, default=DEFAULTS.n_frames,
                        help="frames sampled over the clip")
    search.add_argument("--skip-duplicates", action="store_true",
                        help="skip near-duplicate frames when sampling")
    search.add_argument("--sigma", type=float, default=DEFAULTS.noise_sigma,
                        help="denoise: noise sigma (0-255 scale)")
    search.add_argument("--jpeg-quality", type=int, default=DEFAULTS.jpeg_quality,
                        help="deblock: JPEG quality")
    search.add_argument("--seed", type=int, default=DEFAULTS.seed)
    search.add_argument("--storage", help="Optuna RDB URL, e.g. sqlite:///runs/study.db")
    search.add_argument("--study-name")
    search.add_argument("--resume", action="store_true", help="continue a stored study")
    search.add_argument("--worker", type=int, default=0,
                        help="index of this process among those sharing one stored study "
                             "(0, 1, ...): each samples with its own seed")
    search.add_argument("--out", help="output folder (default runs/<clip>-<task>-<utc time>)")
    probe_cmd = commands.add_parser("probe", help="print what the loader sees in a clip")
    probe_cmd.add_argument("clip")
    export = commands.add_parser("export", help="bundle a checkpoint as ONNX + TorchScript + card")
    export.add_argument("checkpoint", help="a checkpoint .pt of a trial or baseline")
    export.add_argument("--out", required=True, help="the bundle zip to write")
    export.add_argument("--task", help=f"the checkpoint's task, one of {', '.join(TASKS)}")
    export.add_argument("--clip", help="real frames for the parity check (default: synthetic)")
    export.add_argument("--resolution", default="1280x720",
                        help="output WIDTHxHEIGHT at which costs are stated")
    return parser


def _resolution(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"cannot read resolution {text!r}: write WIDTHxHEIGHT, "
                          "e.g. 1280x720") from None
    return width, height


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    objectives = tuple(part.strip() for part in args.objective.split(","))
    out = args.out or str(Path("runs") / "{}-{}-{}".format(
        Path(args.clip).stem, args.task, datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")))
    single = args.steps is not None
    return SearchConfig(
        clip=args.clip, task=args.task, n_trials=args.trials, strategy=args.strategy,
        objectives=objectives,  # type: ignore[arg-type]  # validated by SearchConfig
        budget=TrainBudget(steps=args.steps if single else DEFAULTS.budget.steps,
                           batch_size=args.batch_size, patch_size=args.patch_size,
                           threads=args.threads),
        rungs=None if single else Rungs(args.min_steps, args.max_steps, args.eta),
        teacher=args.teacher, device=args.device,
        constraints=Constraints(args.max_macs, args.max_params, args.max_latency_ms),
        resolution=_resolution(args.resolution), seed=args.seed, n_frames=args.frames,
        skip_near_duplicates=args.skip_duplicates, noise_sigma=args.sigma,
        jpeg_quality=args.jpeg_quality, storage=args.storage, study_name=args.study_name,
        resume=args.resume, out_dir=out,
    )


def summary(report: dict) -> str:
    steps = report.get("rung_steps", [])
    top = report.get("top_rung", 0)
    lines = [f"report: {report['config']['out_dir']}/report.json (+ pareto.png)",
             f"device {report.get('device', 'cpu')}; rungs "
             + " -> ".join(f"{s:,}" for s in steps) + " steps; evaluations per rung "
             + "/".join(str(n) for n in report["timing"].get("evaluations_per_rung", [])),
             f"hypervolume {report['hypervolume']:.3f} (top rung); "
             f"{report['timing']['trials_per_hour']:.0f} first-rung evaluations/hour",
             f"Pareto front at the top rung ({steps[top] if steps else '?'} steps), "
             "PSNR per rung:"]
    if not report["pareto_front"]:
        lines.append("  (no candidate above the reference reached the top rung)")
    for t in report["pareto_front"]:
        rungs = " -> ".join(f"{r['psnr']:.2f}" for r in t.get("rungs", []) if "psnr" in r)
        lines.append(f"  #{t['number']:>3} {t['psnr']:6.2f} dB  {format_count(t['macs']):>7} MACs"
                     f"  {format_count(t['params']):>6} params  {t['latency_ms']:6.0f} ms  "
                     f"{t['arch']}  [{rungs}]")
    reference = report["baselines"][0]["psnr"] if report["baselines"] else None
    for b in report["baselines"]:
        label = b.get("label", b["name"])
        flag = ("  (not above the reference)" if b["learned"] and reference is not None
                and b["psnr"] <= reference else "")
        steps_text = f"  {b['steps']:,} steps" if b.get("steps") else ""
        lines.append(f"  {label:>8} {b['psnr']:6.2f} dB  {format_count(b['macs']):>7} MACs"
                     f"{steps_text}{flag}")
    for row in report["baseline_dominance"]:
        if row.get("below_reference"):
            verdict = "not above the reference: no verdict"
        elif row["dominated"]:
            verdict = (f"dominated by #{row['dominated_by']} (best margin "
                       f"{row['best_margin_db']:+.2f} dB)")
        else:
            verdict = "NOT dominated at the top rung"
        lines.append(f"  {row['baseline']}: {verdict}")
    if not report.get("complete", True):
        lines.append("stopped before the end: rerun with --storage ... --resume to finish")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "probe":
            print(json.dumps(probe(args.clip).to_dict(), indent=2))
            return 0
        if args.command == "export":
            from engine.deploy.export import ExportError, export_bundle

            try:
                card = export_bundle(Path(args.checkpoint), Path(args.out), task_name=args.task,
                                     clip=Path(args.clip) if args.clip else None,
                                     resolution=_resolution(args.resolution))
            except ExportError as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
            parity = card["parity"]
            worst = max(parity["onnx_max_abs_diff_random"], parity["onnx_max_abs_diff_real"])
            print(f"bundle: {args.out} ({card['architecture']}, x{card['scale']}, "
                  f"{format_count(card['macs'])} MACs); ONNX parity {worst:.2g}")
            return 0
        from engine.search.search import SearchError, run_search
        from engine.search.study import StudyError

        config = config_from_args(args)
        try:
            report = run_search(config, ProgressBar(), worker=args.worker)
        except (SearchError, StudyError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(summary(report))
        return 0
    except (ConfigError, ClipError, UnknownNameError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: with --storage, rerun with --resume to continue", file=sys.stderr)
        return 130
