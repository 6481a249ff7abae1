"""`python -m bench --quick`: every section runs end to end on toy sizes (CI's smoke test of
`make bench`) and the report carries each section, target and plot."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import SECTIONS
from bench.search_quality import DEFAULT_STRATEGY

REPO = Path(__file__).resolve().parents[2]
# ~7 min on an idle machine; leave room for a loaded one (the suite default is 600 s).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def run_bench(out: Path, cache: Path, *args: str,
              timeout: float = 1500) -> subprocess.CompletedProcess:
    """`python -m bench --quick ARGS --out OUT --cache CACHE` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "bench", "--quick", *args, "--out", str(out), "--cache",
         str(cache)], cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("bench-quick")
    return out, run_bench(out, out / "cache")


def test_quick_run_succeeds(quick_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    out, done = quick_run
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    for name in SECTIONS:
        assert f"== {name} ==" in done.stdout


def test_report_holds_every_section_and_target(
    quick_run: tuple[Path, subprocess.CompletedProcess],
) -> None:
    out, _ = quick_run
    report = (out / "report.md").read_text()
    assert "quick mode" in report and "- Commit: `" in report and "- Machine: " in report
    results = json.loads((out / "bench-results.json").read_text())
    assert set(results["sections"]) == set(SECTIONS)
    targets = results["targets"]
    assert {t["section"] for t in targets} == set(SECTIONS)
    for target in targets:
        assert target["measured"] not in ("", "failed"), target
        assert f"| {target['name']} |" in report
    for plot in (out / "plots").glob("*.png"):
        assert plot.stat().st_size > 5_000, plot
        assert f"(plots/{plot.name})" in report
    assert len(list((out / "plots").glob("*.png"))) >= 4


def test_headline_figures_are_real_numbers(
    quick_run: tuple[Path, subprocess.CompletedProcess],
) -> None:
    out, _ = quick_run
    sections = json.loads((out / "bench-results.json").read_text())["sections"]
    search, throughput = sections["search"], sections["throughput"]
    assert search["median_hv_ratio_vs_random"] >= 0
    cpu = search["cpu_seconds"]  # the random search was held to the default one's CPU
    assert 0.3 < cpu["random/0"] / cpu[f"{DEFAULT_STRATEGY}/0"] < 3.0, cpu
    assert throughput["per_hour_1"] > 0 and throughput["per_hour_2"] > 0
    assert 0.0 <= throughput["overhead_share"] < 1.0
    fidelity = sections["fidelity"]
    assert -1.0 <= fidelity["tau"] <= 1.0 and fidelity["genomes"] >= 4
    # A promotion equals one run to the same budget (to float rounding).
    assert fidelity["mean_abs_promoted_vs_one_go_db"] < 0.05
    models = sections["models"]
    clip = models["sr_x2"]["city_tiny.mp4"]
    assert math.isfinite(clip["imdn_psnr"]) and models["imdn_macs"] > 1e9
    assert clip["espcn_psnr"] > 0 and clip["fsrcnn_psnr"] > 0


def test_a_second_quick_run_reuses_the_cache(
    quick_run: tuple[Path, subprocess.CompletedProcess],
) -> None:
    """...and, being partial, replaces only its sections: the others stay in the report."""
    out, first = quick_run
    assert first.returncode == 0
    again = out / "again"
    again.mkdir()
    shutil.copy(out / "bench-results.json", again / "bench-results.json")
    done = run_bench(again, out / "cache", "--only", "search", "models", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "running" not in done.stdout and "training" not in done.stdout, done.stdout
    report = (again / "report.md").read_text()
    assert "0 computed" in report and "This run measured search, models." in report
    kept = [name for name in SECTIONS if name not in ("search", "models")]
    assert report.count("_Kept from an earlier run: ") == len(kept)
    results = json.loads((again / "bench-results.json").read_text())
    assert list(results["records"]) == list(SECTIONS)
    before = json.loads((out / "bench-results.json").read_text())["records"]
    for name in kept:
        assert results["records"][name] == before[name]
        assert f"## {before[name]['title']}" in report
    assert results["records"]["search"]["generated"] >= before["search"]["generated"]
    assert results["records"]["search"]["command"].endswith("--only search models --out "
                                                            f"{again} --cache {out / 'cache'}")


def test_full_mode_adds_x4_and_denoise(quick_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    """--full on toy sizes: x4 and denoising get their own search, training and test sets."""
    out, first = quick_run
    assert first.returncode == 0
    done = run_bench(out / "full", out / "cache", "--full", "--only", "models")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = (out / "full" / "report.md").read_text()
    for title in ("x2: quality and cost", "x4: quality and cost", "Kodak24 PSNR/SSIM"):
        assert title in report, title
    assert "| identity |" in report  # denoising's non-learned baseline is the noisy input
