"""The report's Pareto plot: PSNR against MACs on a log axis, the front drawn as a line,
handcrafted baselines marked, the non-learned baseline as a dashed reference line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: workers and CI have no display
import matplotlib.pyplot as plt  # noqa: E402

from engine.config import format_count  # noqa: E402


def plot_title(report: dict[str, Any]) -> str:
    """'<task> on <clip>: N scored trials', the clip by its owner's name (a report before
    `clip.name` existed falls back on the file's name)."""
    clip = report["clip"].get("name") or Path(report["clip"]["path"]).name
    trials = sum(1 for t in report["trials"] if t["state"] == "complete")
    return f"{report['task']['label']} on {clip}: {trials} scored trials"


def plot_pareto(report: dict[str, Any], path: Path) -> Path:
    trials = [t for t in report["trials"] if t["state"] == "complete"]
    front = [t for t in report["pareto_front"] if t.get("macs")]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    if trials:
        ax.scatter([t["macs"] for t in trials], [t["psnr"] for t in trials], s=18,
                   color="#9aa5b1", label="trials", zorder=2)
    if front:
        ax.plot([t["macs"] for t in front], [t["psnr"] for t in front], "-o", color="#1f6feb",
                markersize=6, label="Pareto front", zorder=3)
        for t in front:
            ax.annotate(f"#{t['number']}", (t["macs"], t["psnr"]), textcoords="offset points",
                        xytext=(4, -10), fontsize=7, color="#1f6feb")
    markers = iter(["s", "D", "^", "v", "P"])
    for base in report["baselines"]:
        if base["learned"]:
            ax.scatter([base["macs"]], [base["psnr"]], marker=next(markers), s=60,
                       color="#d1242f", zorder=4,
                       label=f"{base['name']} ({format_count(base['macs'])} MACs)")
        else:
            ax.axhline(base["psnr"], linestyle="--", color="#6e7781", linewidth=1,
                       label=f"{base['name']} ({base['psnr']:.2f} dB)")
    ax.set_xscale("log")
    width, height = report["macs_resolution"]
    ax.set_xlabel(f"MACs per {width}x{height} output frame (log scale)")
    ax.set_ylabel("PSNR-Y on held-out frames (dB)")
    ax.set_title(plot_title(report))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
