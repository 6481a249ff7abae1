"""The benchmark's own logic on hand-made inputs: the cache, front thinning, hypervolume
curves, the complexity ratio and the rank statistic."""

from __future__ import annotations

from pathlib import Path

from bench.cache import Cache
from bench.found_vs_handcrafted import judge, pick_front
from bench.search_quality import hypervolume_curve
from bench.throughput import kendall_tau, spread_genomes


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


def _trial(number: int, psnr: float, macs: float, arch: str | None = None) -> dict:
    return {"number": number, "state": "complete", "counted": True, "psnr": psnr,
            "macs": macs, "arch": arch or f"a{number}", "genome": {"n": number}}


def test_pick_front_keeps_the_cheapest_and_the_best() -> None:
    runs = [{"trials": [_trial(0, 30.0, 1e8), _trial(1, 31.0, 2e8), _trial(2, 30.5, 3e8),
                        _trial(3, 31.5, 4e8), _trial(4, 32.0, 8e8)]},
            {"trials": [_trial(0, 32.5, 2e9, arch="b0"), _trial(1, 32.6, 4e9, arch="a4"),
                        _trial(2, 33.0, 9e9, arch="b2")]}]
    front = pick_front(runs, 3)  # spread over log MACs: cheapest, middle, best
    assert [t["psnr"] for t in front] == [30.0, 32.5, 33.0]
    everything = pick_front(runs, 10)  # trial 2 of run 0 is dominated by trial 1
    assert 30.5 not in [t["psnr"] for t in everything]
    assert [t["psnr"] for t in everything if t["arch"] == "a4"] == [32.6]  # best twin kept


def test_hypervolume_curve_never_decreases() -> None:
    trials = [_trial(i, 29 + (i % 3), 1e8 * (i + 1)) for i in range(8)]
    trials.append({**_trial(8, 40.0, 1e8), "counted": False, "state": "rejected"})
    curve = hypervolume_curve(trials, bicubic=28.0, max_macs=10**10)
    assert len(curve) == 8
    assert all(b >= a for a, b in zip(curve, curve[1:], strict=False))
    assert curve[0] > 0


def _model(name: str, kind: str, psnr: float, macs: float) -> dict:
    return {"name": name, "kind": kind, "mean_psnr": psnr, "macs": macs}


def test_complexity_ratio_and_dominance() -> None:
    models = [_model("found 1", "found", 31.0, 4e8), _model("found 2", "found", 31.8, 1e9),
              _model("found 3", "found", 32.1, 3e9), _model("ESPCN", "handcrafted", 31.2, 6e9),
              _model("FSRCNN", "handcrafted", 31.9, 5e8),
              _model("proto", "prototype", 32.3, 4e10)]
    summary, targets, rows = judge("sr_x2", models)
    assert summary["complexity_ratio_0.3"] == 4e10 / 3e9
    assert summary["complexity_ratio_0.5"] == 4e10 / 1e9
    assert summary["complexity_ratio_1.0"] == 4e10 / 1e9
    assert [r[1] for r in rows] == ["found 3", "found 2", "found 2"]
    assert summary["margin_over_ESPCN"] == 32.1 - 31.2  # found 3 is cheaper than ESPCN
    assert abs(summary["margin_over_FSRCNN"] - (31.0 - 31.9)) < 1e-9  # only found 1 is as cheap
    met = {t.name: t.met for t in targets}
    assert met["sr_x2: ESPCN dominated by a found model at no more MACs"] is True
    assert met["sr_x2: FSRCNN dominated by a found model at no more MACs"] is False
    assert met["sr_x2: prototype MACs / cheapest found model within 0.3 dB"] is False


def test_no_found_model_near_the_prototype_is_reported_not_hidden() -> None:
    models = [_model("found 1", "found", 30.0, 4e8), _model("ESPCN", "handcrafted", 29.0, 6e9),
              _model("FSRCNN", "handcrafted", 29.5, 5e9),
              _model("proto", "prototype", 32.0, 4e10)]
    summary, targets, _ = judge("sr_x2", models)
    assert summary["complexity_ratio_0.3"] is None
    ratio_target = next(t for t in targets if "prototype" in t.name)
    assert "no found model within 0.3 dB" in ratio_target.measured
    assert "2.00 dB below" in ratio_target.measured


def test_kendall_tau_and_spread_genomes() -> None:
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    genomes = spread_genomes(4, seed=3)
    assert len(genomes) == 4 and len({str(g) for g in genomes}) == 4
