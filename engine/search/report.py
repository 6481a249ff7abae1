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
        "rung": int(attrs.get("rung", 0)),
        "candidate": int(attrs.get("candidate", trial.number)),
        # The seed nearest to this handcrafted baseline (promoted to the top rung), else None.
        "anchor": attrs.get("anchor"),
    }
    if "reason" in attrs:
        record["reason"] = attrs["reason"]
    if "duplicate_of" in attrs:
        record["duplicate_of"] = attrs["duplicate_of"]
    return record


def candidate_records(trials: list[optuna.trial.FrozenTrial]) -> list[dict[str, Any]]:
    """One record per candidate (numbered by its first trial), with its result at the
    highest rung it completed and `rungs`: its PSNR (and steps, time) at every rung.

    A candidate whose promotion is under way keeps its last completed result and says
    `promoting`; a promotion killed with its worker leaves no trace but its failed trial."""
    by_number = {t.number: trial_record(t) for t in trials
                 if t.user_attrs.get("outcome") != "surplus"}  # asked for, never a candidate
    records: dict[int, dict[str, Any]] = {}
    promotions: list[dict[str, Any]] = []
    for record in by_number.values():
        if record["rung"] == 0:
            if record["state"] == "waiting":
                continue
            records[record["number"]] = {**record, "rungs": [], "promoting": None}
        else:
            promotions.append(record)
    for record in records.values():
        if record["state"] == "complete":
            record["rungs"].append(_rung_entry(record))
    for promo in sorted(promotions, key=lambda r: (r["rung"], r["number"])):
        base = records.get(promo["candidate"])
        if base is None:
            continue
        if promo["state"] == "complete":
            base["rungs"].append(_rung_entry(promo))
            for key in _RUNG_RESULT_FIELDS:
                base[key] = promo[key]
            for key in ("latency_ms", "latency_min_ms"):  # measured at the top rung
                if promo[key] is not None:
                    base[key] = promo[key]
            base["rung"] = promo["rung"]
            if base.get("promoting") == promo["rung"]:
                base["promoting"] = None
        elif promo["state"] in ("running", "waiting"):
            base["promoting"] = promo["rung"]
        elif promo["state"] == "failed" and promo["counted"]:  # diverged on a longer rung
            base["rungs"].append({"rung": promo["rung"], "failed": promo.get("reason", "")})
    return sorted(records.values(), key=lambda r: r["number"])


_RUNG_RESULT_FIELDS = ("psnr", "ssim", "steps", "train_seconds", "final_loss")


def _rung_entry(record: dict[str, Any]) -> dict[str, Any]:
    return {"rung": record["rung"], "trial": record["number"], "steps": record["steps"],
            "psnr": record["psnr"], "ssim": record["ssim"],
            "train_seconds": record["train_seconds"]}


def above_reference(record: dict, reference_psnr: float) -> bool:
    """A result counts only when strictly above the no-learning reference (bicubic, or the
    degraded input itself): below it, it is flagged and never on a front or a verdict."""
    return record.get("psnr") is not None and record["psnr"] > reference_psnr


def verdict_pool(records: list[dict], top_rung: int, reference_psnr: float) -> list[dict]:
    """The results verdicts are read from: scored at the top rung, above the reference."""
    return [r for r in records if r["state"] == "complete" and r.get("rung", 0) == top_rung
            and above_reference(r, reference_psnr)]


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


def dominance(baselines: list[dict], records: list[dict], reference_psnr: float) -> list[dict]:
    """For each learned baseline: the cheapest scored trial at least as good at no more MACs,
    and the best PSNR margin any such trial has. A baseline not above the reference is
    flagged, and nothing is said to match or dominate it."""
    scored = [r for r in records if r["state"] == "complete"]
    rows = []
    for base in (b for b in baselines if b["learned"]):
        if not above_reference(base, reference_psnr):
            rows.append({"baseline": base["name"], "dominated": False, "dominated_by": None,
                         "best_margin_db": None, "strictly": False, "below_reference": True})
            continue
        rivals = [r for r in scored if r["psnr"] >= base["psnr"] and r["macs"] <= base["macs"]]
        cheapest = min(rivals, key=lambda r: r["macs"]) if rivals else None
        rows.append({
            "baseline": base["name"],
            "dominated": bool(rivals),
            "dominated_by": cheapest["number"] if cheapest else None,
            "best_margin_db": max(r["psnr"] - base["psnr"] for r in rivals) if rivals else None,
            "strictly": any(dominates((r["psnr"], r["macs"]), (base["psnr"], base["macs"]))
                            for r in rivals),
            "below_reference": False,
        })
    return rows


def build_report(study: optuna.Study, data: SearchData, baselines: list[dict],
                 wall_seconds: float, complete: bool = True) -> dict[str, Any]:
    """The search as plain JSON. `trials` holds one record per candidate; the front, the
    knee, the hypervolume and the baseline verdicts are read at the top rung only, from
    results strictly above the no-learning reference (`baselines[0]`)."""
    config = data.config
    frozen = study.get_trials(deepcopy=False)
    records = candidate_records(frozen)
    finished = [r for r in records if r["state"] not in ("running", "waiting")]
    reference_psnr = baselines[0]["psnr"]
    top = len(config.rung_steps) - 1
    for record in finished:
        record["below_reference"] = not above_reference(record, reference_psnr)
        record["top_rung"] = record["state"] == "complete" and record["rung"] == top
    pool = verdict_pool(finished, top, reference_psnr)
    front = front_of(pool, config.objectives[1])
    knee = knee_point([(r["psnr"], math.log10(r["macs"])) for r in front])
    # Every evaluation that spent a budget (any rung); a killed worker's is not a result.
    evaluations = [trial_record(t) for t in frozen]
    spent = [e for e in evaluations if e["counted"]]
    first_rung = [e for e in spent if e["rung"] == 0]
    train_seconds = sum(e["train_seconds"] or 0.0 for e in spent)
    return {
        "version": 2,
        "config": config.to_dict(),
        "task": data.task.describe(),
        "clip": {**data.frames.info.to_dict(), "content_hash": data.frames.key,
                 "name": config.clip_name or Path(config.clip).name},
        "study": {"name": study.study_name, "storage": config.storage},
        "device": data.device,
        "macs_resolution": list(config.resolution),
        "space_macs_range": [data.bounds.min_macs, data.bounds.max_macs],
        "train_frames": data.train_frames,
        "eval_frames": data.eval_frames,
        "rung_steps": list(config.rung_steps),
        "top_rung": top,
        "complete": complete,
        "baselines": baselines,
        "trials": finished,
        "pareto_front": front,
        "knee": front[knee]["number"] if knee is not None else None,
        "hypervolume": hypervolume_of(pool, reference_psnr, data.bounds.max_macs),
        "hypervolume_reference": [0.0, math.log10(data.bounds.max_macs)],
        "baseline_dominance": dominance(baselines, pool, reference_psnr),
        "timing": {
            "wall_seconds": wall_seconds,
            "trained_trials": len(first_rung),
            "evaluations_per_rung": [sum(1 for e in spent if e["rung"] == k)
                                     for k in range(top + 1)],
            "train_seconds": train_seconds,
            "trials_per_hour": 3600.0 * len(first_rung) / wall_seconds if wall_seconds else None,
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
