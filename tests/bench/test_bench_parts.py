"""The benchmark's own logic on hand-made inputs: the cache, the random search's CPU
allowance, the verdict pools, the baseline margins and IMDN ratios, the fidelity genomes, the
throughput breakdown, the rank statistic, and the jobs section's page and stage readings."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cache import Cache
from bench.fidelity import fronts_macs_range, kendall_tau, pick_genomes
from bench.found_vs_handcrafted import found_pool, margin_over, versus_prototype
from bench.job_latency import (
    JobBenchError,
    duplicates,
    end_state,
    preview_id,
    preview_status,
    stage_met,
    worst_stage,
)
from bench.search_quality import _Budgeted, random_pool, top_pool
from bench.throughput import breakdown, spread_genomes
from bench.training import TrainingSpec


def test_cache_computes_once_and_keys_on_the_whole_config(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    calls = []

    def compute() -> dict:
        calls.append(1)
        return {"psnr": 31.5}

    value, _, cached = cache.cached("model", {"steps": 600}, compute)
    again, _, cached_again = cache.cached("model", {"steps": 600}, compute)
    other, _, other_cached = cache.cached("model", {"steps": 6000}, compute)
    assert (value, again, other) == ({"psnr": 31.5},) * 3
    assert (cached, cached_again, other_cached) == (False, True, False)
    assert len(calls) == 2 and len(cache.hits) == 1
    assert Cache(tmp_path, fresh=True).get("model", {"steps": 600}) is None


class _Event:
    def __init__(self, kind: str, **fields: object) -> None:
        self.kind = kind
        self.__dict__.update(fields)


def test_random_search_stops_between_trials_once_its_cpu_is_spent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [0.0]
    monkeypatch.setattr("bench.search_quality.time.process_time", lambda: clock[0])
    # 100 CPU-s allowed; a trial trains 600 steps; continuing a front genome costs 4,320 more.
    stop = _Budgeted(100.0, continue_steps=4320, steps=600, reference=[30.0])
    stop.emit(_Event("search_started"))
    assert stop() is False  # at least one trial

    def trial(number: int, cpu: float, psnr: float, macs: float) -> None:
        stop.emit(_Event("trial_started"))
        clock[0] += cpu
        assert stop() is False  # never mid-trial
        stop.emit(_Event("trial_finished", trial={"number": number, "state": "complete",
                                                  "psnr": psnr, "macs": macs}))

    trial(0, 2.0, 31.0, 1e9)  # its continuation: 2 / 600 * 4320 = 14.4 CPU-s
    assert stop.front_continuation() == pytest.approx(14.4)
    assert stop() is False  # 2 + 14.4 + 1 < 100
    trial(1, 2.0, 29.0, 5e8)  # below the reference: never on the front
    assert stop.front_continuation() == pytest.approx(14.4)
    trial(2, 2.0, 32.0, 2e9)  # the front is now trials 0 and 2
    assert stop.front_continuation() == pytest.approx(28.8)
    clock[0] = 69.0  # 69 + 28.8 + 1 < 100: one more fits
    assert stop() is False
    clock[0] = 71.0  # 71 + 28.8 + 1 > 100: the next trial would not fit
    assert stop() is True


def _trial(number: int, psnr: float, macs: float, top: bool = True, arch: str | None = None,
           below: bool = False) -> dict:
    return {"number": number, "state": "complete", "counted": True, "psnr": psnr,
            "macs": macs, "arch": arch or f"a{number}", "genome": {"n": number},
            "top_rung": top, "below_reference": below,
            "rungs": [{"rung": 0, "psnr": psnr - 1.0}] + ([{"rung": 1, "psnr": psnr}]
                                                          if top else [])}


def test_pools_hold_top_rung_results_above_bicubic_only() -> None:
    run = {"out_dir": "/runs/a", "bicubic_psnr": 30.0, "rung_steps": [300, 1200],
           "trials": [_trial(0, 31.0, 1e9), _trial(1, 33.0, 4e9, top=False),
                      _trial(2, 29.5, 5e8, below=True), _trial(3, 32.0, 2e9)]}
    assert [t["number"] for t in top_pool(run)] == [0, 3]
    rival = {"bicubic_psnr": 30.0, "front_top": [
        {"number": 4, "psnr": 31.5, "macs": 1e9}, {"number": 5, "psnr": 29.0, "macs": 2e8}]}
    assert [t["number"] for t in random_pool(rival)] == [4]
    other = {**run, "out_dir": "/runs/b", "trials": [_trial(7, 31.4, 1e9, arch="a0")]}
    pool = found_pool([run, other])  # a0 found twice: its best result, its own checkpoint
    assert [(t["arch"], t["psnr"]) for t in pool] == [("a0", 31.4), ("a3", 32.0)]
    assert pool[0]["checkpoint"] == "/runs/b/checkpoints/trial-7.pt"


def test_margins_over_baselines_and_ratios_against_imdn() -> None:
    pool = [{"arch": "a", "psnr": 31.0, "macs": 4e8}, {"arch": "b", "psnr": 31.8, "macs": 1e9},
            {"arch": "c", "psnr": 32.1, "macs": 3e9}]
    assert margin_over({"psnr": 31.2, "macs": 6e9}, pool) == pytest.approx(0.9)
    assert margin_over({"psnr": 31.9, "macs": 5e8}, pool) == pytest.approx(-0.9)
    assert margin_over({"psnr": 30.0, "macs": 1e8}, pool) is None  # nothing that cheap
    versus = versus_prototype({"psnr": 32.3, "macs": 1.588e11}, pool)
    assert versus["ratio_0.3"] == pytest.approx(1.588e11 / 3e9)
    assert versus["ratio_0.5"] == pytest.approx(1.588e11 / 1e9)
    assert versus["ratio_1.0"] == pytest.approx(1.588e11 / 1e9)  # a is 1.3 dB below
    # 1/100 of IMDN: 1.588 G MACs; b (1 G) is the best that cheap, 0.5 dB below IMDN.
    assert versus["gap_at_1_100"] == pytest.approx(0.5)
    assert versus["best_at_1_100"]["arch"] == "b"
    none = versus_prototype({"psnr": 40.0, "macs": 1e10}, pool)
    assert none["ratio_0.3"] is None and none["gap_at_1_100"] is None


def test_fidelity_genomes_span_the_fronts_macs() -> None:
    run = {"bicubic_psnr": 30.0, "rung_steps": [300, 1200], "trials": [
        _trial(0, 31.0, 1e9), _trial(1, 33.0, 8e9, top=False), _trial(2, 32.0, 2e9),
        _trial(3, 31.5, 3e10, top=False), _trial(4, 29.0, 1e8, top=False)]}
    assert fronts_macs_range([run]) == (1e9, 2e9)  # the top-rung front: trials 0 and 2
    # A top-rung front of one cost: the fronts of every rung instead. Rung 0 (psnr - 1):
    # 30.0@1e9 is not above bicubic, 32.0@8e9 dominates 30.5@3e10; rung 1: 31.0@1e9.
    single = {**run, "trials": [t for t in run["trials"] if t["number"] in (0, 1, 3)]}
    assert fronts_macs_range([single]) == (1e9, 8e9)
    picked = pick_genomes([single], 2, (1e9, 8e9))
    assert [g["macs"] for g in picked] == [1e9, 8e9]
    assert all(g["source"] == "searched" for g in picked)


def test_fidelity_tops_up_with_random_genomes_in_range() -> None:
    run = {"bicubic_psnr": 30.0, "rung_steps": [300], "trials": [_trial(0, 31.0, 1e9)]}
    picked = pick_genomes([run], 3, (5e8, 2e10))
    assert len(picked) == 3 and len({g["arch"] for g in picked}) == 3
    assert sum(g["source"] == "random" for g in picked) == 2
    assert all(5e8 <= g["macs"] <= 2e10 for g in picked)
    assert [g["macs"] for g in picked] == sorted(g["macs"] for g in picked)


def test_throughput_breakdown_from_a_worker_timeline() -> None:
    run = {"submitted": 0.0, "imported": 3.0, "marks": [
        ("search_started", 4.0),
        ("trial_started", 4.5), ("trained", 44.5), ("evaluate", 1.0), ("trial_finished", 46.0),
        ("trial_started", 46.5), ("trained", 86.5), ("evaluate", 2.0), ("trial_finished", 89.0),
    ]}
    parts = breakdown(run)
    assert parts["n"] == 2 and parts["train"] == pytest.approx(40.0)
    assert parts["before"] == pytest.approx(0.5)
    assert parts["evaluate"] == pytest.approx(1.5)
    assert parts["after"] == pytest.approx(2.0 - 1.5)  # (1.5 + 2.5) / 2 minus evaluate
    assert parts["start"] == {"spawn and imports": 3.0, "search start (frames, study)": 1.0}
    assert parts["start_per_evaluation"] == pytest.approx(2.0)


def test_kendall_tau_spread_genomes_and_rung_chains() -> None:
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    genomes = spread_genomes(4, seed=3)
    assert len(genomes) == 4 and len({str(g) for g in genomes}) == 4
    spec = TrainingSpec.for_genome(genomes[0], clip="c", task="sr_x2", steps=80,
                                   rungs=(20, 40, 80))
    assert spec.rungs == (20, 40, 80)
    with pytest.raises(ValueError, match="must end at steps"):
        TrainingSpec.for_genome(genomes[0], clip="c", task="sr_x2", steps=60, rungs=(20, 40))


def test_jobs_section_reads_pages_events_and_stages() -> None:
    page = '<h1>trial-3 <span class="badge badge-running">Running</span></h1>'
    assert preview_status(page) == "running"
    assert preview_status("<h1>no badge</h1>") is None
    assert preview_id("/previews/42/") == 42
    assert preview_id("http://127.0.0.1:8000/previews/7/") == 7
    with pytest.raises(JobBenchError, match="not a preview page"):
        preview_id("/searches/3/")
    assert end_state({"kind": "search_cancelled", "status": "cancelled"}) == "cancelled"
    assert end_state({"kind": "preview_cancelled", "preview": 1}) == "cancelled"
    assert end_state(None) == "still running"
    done = end_state({"kind": "search_done", "status": "finished", "reason": "ran out"})
    assert done == "finished (search_done: ran out)"
    # A cancel meets the goal only when the job ends cancelled, within 5 s.
    assert stage_met(0.3, "cancelled") is True
    assert stage_met(0.3, done) is False
    assert stage_met(15.2, "cancelled") is False
    assert stage_met(None, None) is None
    assert worst_stage({"queued": 15.2, "mid-trial": 0.3, "preview": None}) == ("queued", 15.2)
    assert worst_stage({"preview": None}) is None
    assert duplicates([1, 2, 2, 3, 3, 3]) == 3 and duplicates([]) == 0
