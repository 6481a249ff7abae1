"""The search report: `report.json` and a Pareto plot, rebuilt from the study alone."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from engine.search.pareto import dominates, hypervolume, knee_point, non_dominated

if TYPE_CHECKING:
    from engine.search.search import SearchData

_STATES = {
    optuna.trial.TrialState.COMPLETE: "complete",
    optuna.trial.TrialState.FAIL: "failed",
    optuna.trial.TrialState.RUNNING: "running",
    optuna.trial.TrialState.WAITING: "waiting",
    optuna.trial.TrialState.PRUNED: "pruned",
}
COST_FIELDS = {"macs": "macs", "params": "params", "latency": "latency_ms"}


def trial_record(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """One trial as plain JSON. `state`: complete (trained and scored), failed, rejected
    (broke a constraint, never trained), duplicate (reused an identical genome's result)."""
    attrs = trial.user_attrs
    outcome = attrs.get("outcome")
    state = _STATES.get(trial.state, str(trial.state))
    if state == "complete" and outcome in ("rejected", "duplicate"):
        state = outcome
    result = attrs.get("result", {})
    record: dict[str, Any] = {
        "number": trial.number,
        "genome": attrs.get("genome"),
        "arch": attrs.get("arch"),
        "state": state,
        "psnr": result.get("psnr"),
        "ssim": result.get("ssim"),
        "macs": result.get("macs"),
        "params": result.get("params"),
        "latency_ms": result.get("latency_ms"),
        "latency_min_ms": result.get("latency_min_ms"),
        "steps": result.get("steps"),
        "train_seconds": result.get("train_seconds"),
        "final_loss": result.get("final_loss"),
        "counted": bool(attrs.get("counted")),  # spent a training budget (see counted_trials)
    }
    if "reason" in attrs:
        record["reason"] = attrs["reason"]
    if "duplicate_of" in attrs:
        record["duplicate_of"] = attrs["duplicate_of"]
    return record


def front_of(records: list[dict], cost: str = "macs") -> list[dict]:
    """Non-dominated scored trials (PSNR up, `cost` down), cheapest first."""
    field = COST_FIELDS[cost]
    scored = [r for r in records if r["state"] == "complete"]
    return [scored[i] for i in non_dominated([(r["psnr"], r[field]) for r in scored])]


def hypervolume_of(records: list[dict], baseline_psnr: float, max_macs: int) -> float:
    """Over (PSNR gain over the non-learned baseline, log10 MACs); reference point
    (0 dB gain, log10 of the space's largest MACs)."""
    points = [(r["psnr"] - baseline_psnr, math.log10(r["macs"]))
              for r in records if r["state"] == "complete"]
    return hypervolume(points, (0.0, math.log10(max_macs)))


def dominance(baselines: list[dict], records: list[dict]) -> list[dict]:
    """For each learned baseline: the cheapest scored trial at least as good at no more MACs,
    and the best PSNR margin any such trial has."""
    scored = [r for r in records if r["state"] == "complete"]
    rows = []
    for base in (b for b in baselines if b["learned"]):
        rivals = [r for r in scored if r["psnr"] >= base["psnr"] and r["macs"] <= base["macs"]]
        cheapest = min(rivals, key=lambda r: r["macs"]) if rivals else None
        rows.append({
            "baseline": base["name"],
            "dominated": bool(rivals),
            "dominated_by": cheapest["number"] if cheapest else None,
            "best_margin_db": max(r["psnr"] - base["psnr"] for r in rivals) if rivals else None,
            "strictly": any(dominates((r["psnr"], r["macs"]), (base["psnr"], base["macs"]))
                            for r in rivals),
        })
    return rows


def build_report(study: optuna.Study, data: SearchData, baselines: list[dict],
                 wall_seconds: float) -> dict[str, Any]:
    config = data.config
    records = [trial_record(t) for t in study.get_trials(deepcopy=False)]
    finished = [r for r in records if r["state"] not in ("running", "waiting")]
    front = front_of(finished, config.objectives[1])
    reference_psnr = baselines[0]["psnr"]
    knee = knee_point([(r["psnr"], math.log10(r["macs"])) for r in front])
    # A killed worker's trial is failed by Optuna but never counted: it is not a result.
    trained = [r for r in finished if r["counted"]]
    train_seconds = sum(r["train_seconds"] or 0.0 for r in trained)
    return {
        "version": 1,
        "config": config.to_dict(),
        "task": data.task.describe(),
        "clip": {**data.frames.info.to_dict(), "content_hash": data.frames.key},
        "study": {"name": study.study_name, "storage": config.storage},
        "macs_resolution": list(config.resolution),
        "space_macs_range": [data.bounds.min_macs, data.bounds.max_macs],
        "train_frames": data.train_frames,
        "eval_frames": data.eval_frames,
        "baselines": baselines,
        "trials": finished,
        "pareto_front": front,
        "knee": front[knee]["number"] if knee is not None else None,
        "hypervolume": hypervolume_of(finished, reference_psnr, data.bounds.max_macs),
        "hypervolume_reference": [0.0, math.log10(data.bounds.max_macs)],
        "baseline_dominance": dominance(baselines, finished),
        "timing": {
            "wall_seconds": wall_seconds,
            "trained_trials": len(trained),
            "train_seconds": train_seconds,
            "trials_per_hour": 3600.0 * len(trained) / wall_seconds if wall_seconds else None,
        },
    }


def write_report(report: dict[str, Any], out_dir: Path) -> Path:
    """Write report.json and pareto.png into `out_dir`; returns the JSON path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "report.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, allow_nan=False, default=_json_default))
    tmp.replace(path)
    from engine.search.plot import plot_pareto  # matplotlib is slow to import: only here

    plot_pareto(report, out_dir / "pareto.png")
    return path


def _json_default(value: object) -> object:
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
