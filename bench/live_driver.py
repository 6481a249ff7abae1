"""The Django side of the live-path benchmark, run in a subprocess with the stack's env
(settings read REDIS_URL / DATABASE_URL / STUDIO_DATA_DIR at import, so the benchmark process
itself cannot play this part).

    python -m bench.live_driver create '{"username", "password", "clip", "config"}'
    python -m bench.live_driver launch SEARCH_ID
    python -m bench.live_driver seed '{"username", "password", "clip", "records": PATH}'

Each command prints one JSON line on stdout (the last line). `seeded_records` (no Django) is
also called by bench/live_path.py, which caches the records it makes.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

# The Django side the reliability tests use too: `create` and `launch` serve both.
from studio_harness.driver import create, launch, user_and_clip

BICUBIC_PSNR = 28.88  # x2 on city.mp4 (README): the seeded PSNRs are gains over it
MAX_MACS = 5_000_000_000  # the seeded search's constraint: bigger genomes are rejected
SEEDED_STEPS = 600  # the CLI's default proxy budget
RESULT_FIELDS = ("psnr", "ssim", "macs", "params", "latency_ms", "steps", "train_seconds")


class _Costs:
    """Real MACs and params of a genome as deployed (branches collapsed), per arch key.

    Every conv of these networks runs at input resolution (pixel shuffle last), so MACs per
    input pixel equal the conv weights: exactly what engine.train.cost.count_macs measures,
    at a tenth of its time."""

    def __init__(self, scale: int, resolution: tuple[int, int]) -> None:
        self.scale, self.resolution = scale, resolution
        self.known: dict[str, tuple[int, int]] = {}

    def __call__(self, genome: Any) -> tuple[int, int]:
        from torch import nn

        from engine.nets.builder import build_network
        from engine.train.cost import count_params, deployed

        key = genome.key()
        if key not in self.known:
            net = deployed(build_network(genome, self.scale))
            weights = sum(m.weight.numel() for m in net.modules() if isinstance(m, nn.Conv2d))
            pixels = (self.resolution[0] / self.scale) * (self.resolution[1] / self.scale)
            self.known[key] = (round(weights * pixels), count_params(net))
        return self.known[key]


def _random_genome(rng: random.Random) -> Any:
    from engine.nets.genome import MAX_BLOCKS, Genome
    from engine.nets.search_space import ACTIVATION_NAMES, DEPTHS, KERNELS, OP_NAMES, WIDTHS

    return Genome(width=rng.choice(WIDTHS), depth=rng.choice(DEPTHS),
                  ops=tuple(rng.choice(OP_NAMES) for _ in range(MAX_BLOCKS)),
                  kernels=tuple(rng.choice(KERNELS) for _ in range(MAX_BLOCKS)),
                  activation=rng.choice(ACTIVATION_NAMES))


def seeded_records(n: int, seed: int, steps: int = SEEDED_STEPS) -> list[dict[str, Any]]:
    """`n` trial records as the engine writes them (trial_record's shape): real genomes with
    their real costs; PSNR follows the measured x2 trend of the README (about +1.5 dB per
    decade of MACs above 0.67G, most trials below the front); a few rejected (over the MACs
    budget), duplicate (an arch already trained) and failed (diverged) trials."""
    rng = random.Random(seed)
    costs = _Costs(2, (1280, 720))
    trained: dict[str, dict[str, Any]] = {}
    records = []
    for number in range(n):
        genome = _random_genome(rng)
        macs, params = costs(genome)
        # NSGA-II learns the constraint: most over-budget proposals give way to others.
        while macs > MAX_MACS and rng.random() < 0.75:
            genome = _random_genome(rng)
            macs, params = costs(genome)
        key = genome.key()
        record: dict[str, Any] = {"number": number, "genome": genome.to_dict(), "arch": key,
                                  "steps": None, "train_seconds": None, "psnr": None,
                                  "ssim": None, "macs": macs, "params": params,
                                  "latency_ms": None, "counted": False}
        if macs > MAX_MACS:
            record.update(state="rejected", reason="breaks the max_macs constraint")
        elif key in trained:
            record.update({k: trained[key][k] for k in RESULT_FIELDS})
            record.update(state="duplicate", duplicate_of=trained[key]["number"])
        elif rng.random() < 0.01:
            record.update(state="failed", counted=True, steps=steps,
                          reason=f"training diverged: loss is nan at step {rng.randint(50, 500)}")
        else:
            gain = 2.4 + 1.5 * math.log10(macs / 0.67e9) - abs(rng.gauss(0, 0.45))
            gain = max(0.2, gain)
            record.update(
                state="complete", counted=True, steps=steps,
                psnr=round(BICUBIC_PSNR + gain, 4),
                ssim=round(min(0.99, 0.83 + 0.022 * gain + rng.gauss(0, 0.004)), 5),
                latency_ms=round((2.5 + 9 * macs / 1e9) * rng.uniform(0.85, 1.3), 3),
                train_seconds=round((8 + 6 * macs / 1e9) * rng.uniform(0.8, 1.25), 2))
            trained[key] = record
        records.append(record)
    return records


def seed(spec: dict[str, Any]) -> dict[str, Any]:
    """A finished search of the given records: rows and event sequence as a real run
    leaves them."""
    from django.utils import timezone

    from engine.config import SearchConfig
    from engine.search.report import front_of
    from webapp.studio.models import Search, SearchEvent, Trial
    from webapp.studio.progress import trial_defaults

    records = json.loads(Path(spec["records"]).read_text())
    n, steps = len(records), SEEDED_STEPS
    user, clip = user_and_clip(spec["username"], spec["password"], spec["clip"])
    counted = sum(r["counted"] for r in records)
    front = {r["number"] for r in front_of(
        [r for r in records if r["state"] == "complete"], "macs")}
    config = SearchConfig.from_dict({
        "clip": "x", "task": "sr_x2", "n_trials": counted, "strategy": "nsga2",
        "constraints": {"max_macs": MAX_MACS}, "budget": {"steps": steps},
        "rungs": None})  # the seeded records are single-fidelity results
    baselines = [
        {"name": "bicubic", "learned": False, "psnr": BICUBIC_PSNR, "ssim": 0.862, "macs": 0,
         "params": 0, "steps": 0, "latency_ms": None, "train_seconds": 0.0},
        {"name": "espcn", "learned": True, "psnr": 30.95, "ssim": 0.901, "macs": 6_150_000_000,
         "params": 26_800, "steps": steps, "latency_ms": 61.0, "train_seconds": 41.0},
        {"name": "fsrcnn", "learned": True, "psnr": 31.35, "ssim": 0.907,
         "macs": 5_610_000_000, "params": 24_700, "steps": steps, "latency_ms": 58.0,
         "train_seconds": 44.0},
    ]
    finished_at = timezone.now()
    search = Search.objects.create(
        owner=user, clip=clip, name=f"{n} trials", config=config.to_dict(),
        status=Search.Status.FINISHED, study_name=f"bench-seeded-{uuid.uuid4().hex[:8]}",
        baselines=baselines, report={"hypervolume": 3.1}, finished_trials=counted,
        started_at=finished_at - timedelta(hours=3), finished_at=finished_at)

    # The event sequence a real run persists (the page reads only the last crop from it,
    # but its size is part of a real database's state).
    events: list[tuple[str, dict[str, Any]]] = [("search_started", {
        "study_name": search.study_name, "n_trials": counted, "already_finished": 0,
        "train_frames": list(range(12)), "eval_frames": [12, 13, 14],
        "macs_range": [30_000_000, 60_000_000_000]})]
    events += [("baseline_finished", {"baseline": b}) for b in baselines]
    rows, finished = [], 0
    for record in records:
        if record["state"] in ("complete", "failed"):
            events.append(("trial_started", {"number": record["number"],
                                             "genome": record["genome"],
                                             "macs": record["macs"]}))
        finished += record["counted"]
        events.append(("trial_finished", {"trial": record, "finished": finished,
                                          "n_trials": counted,
                                          "on_front": record["number"] in front,
                                          "counted": record["counted"]}))
        rows.append(Trial(search=search, number=record["number"], seq=len(events),
                          on_front=record["number"] in front, **trial_defaults(record)))
    events.append(("search_finished", {"report_path": "", "hypervolume": 3.1,
                                       "n_finished": counted}))
    events.append(("search_done", {"finished": counted}))
    Trial.objects.bulk_create(rows, batch_size=500)
    SearchEvent.objects.bulk_create(
        [SearchEvent(search=search, seq=i, kind=kind, payload={"at": 0.0, **payload})
         for i, (kind, payload) in enumerate(events, start=1)], batch_size=500)
    Search.objects.filter(pk=search.pk).update(event_seq=len(events))
    points = sum(1 for r in records if r["state"] == "complete" and r["macs"] > 0)
    return {"search": search.pk, "rows": n, "points": points, "front": len(front),
            "states": {s: sum(r["state"] == s for r in records)
                       for s in ("complete", "rejected", "duplicate", "failed")}}


def main(argv: list[str]) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    django.setup()
    command, argument = argv[0], argv[1]
    if command == "create":
        result = create(json.loads(argument))
    elif command == "launch":
        result = launch(int(argument))
    elif command == "seed":
        result = seed(json.loads(argument))
    else:
        raise SystemExit(f"unknown command {command!r}: create, launch or seed")
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
