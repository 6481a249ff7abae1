"""Plays the part of a search worker for the browser tests, over the real path.

Run as `python -m tests.browser.studio_driver` with the studio's environment (the same
STUDIO_DATA_DIR and REDIS_URL as the server under test). It reads one JSON command a
line on stdin and answers one JSON line on stdout. Events go through the production sink's
functions: `record_event` persists them (so a reload's snapshot has them) and `group_send`
broadcasts them through channels-redis to the server's WebSocket consumers.

Commands: setup, new_search, baselines, trials, event, progress, baseline_progress, finish,
fail, quit. `trials(..., rungs=True)` plays a multi-fidelity search: each candidate trains on
the first rung and some move up to longer ones (see `rung_reached`).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sys
import traceback
from datetime import timedelta
from typing import Any

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.utils import timezone  # noqa: E402

from engine.config import Constraints, Rungs, SearchConfig, TrainBudget  # noqa: E402
from engine.nets.genome import MAX_BLOCKS, Genome  # noqa: E402
from engine.search.report import front_of, verdict_pool  # noqa: E402
from tests.conftest import TINY_CLIP  # noqa: E402
from webapp.studio.broadcast import group_send  # noqa: E402
from webapp.studio.models import Clip, Search  # noqa: E402
from webapp.studio.progress import record_event  # noqa: E402

LR_PIXELS = 640 * 360  # x2 SR at a 1280x720 output: MACs ~ params x input pixels
BICUBIC_PSNR = 29.87
MAX_MACS = 5_000_000_000
records: dict[int, list[dict[str, Any]]] = {}
RUNG_STEPS = list(Rungs().steps)  # the default rungs: 300, 1,200, 4,800 steps
TOP_RUNG = len(RUNG_STEPS) - 1
RUNG_GAIN_DB = 0.25  # what a synthetic candidate gains from one rung to the next
# Multi-fidelity mode: each search's candidates at the highest rung they completed, and its
# evaluations so far.
rung_records: dict[int, dict[int, dict[str, Any]]] = {}
evaluations: dict[int, int] = {}


def setup(username: str, password: str) -> dict[str, Any]:
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        user = user_model.objects.create_user(username=username, password=password)
    folder = settings.MEDIA_ROOT / "clips" / str(user.pk)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TINY_CLIP, folder / "city_tiny.mp4")
    clip = Clip.objects.create(
        owner=user, file=f"clips/{user.pk}/city_tiny.mp4", original_name="city_tiny.mp4",
        size_bytes=TINY_CLIP.stat().st_size, content_hash="0" * 20, codec="avc1",
        width=320, height=180, fps=25.0, frame_count=48, duration_s=1.92)
    return {"user": user.pk, "clip": clip.pk}


def new_search(clip: int, name: str, n_trials: int, rungs: bool = False) -> dict[str, Any]:
    """A running search: single fidelity (600 steps a trial, as the synthetic trials), or with
    `rungs` the default multi-fidelity rungs (300, 1,200, 4,800 steps; `trials(rungs=True)`)."""
    clip_row = Clip.objects.get(pk=clip)
    config = SearchConfig(clip=clip_row.file.name, task="sr_x2", n_trials=n_trials,
                          strategy="nsga2", budget=TrainBudget(steps=600),
                          rungs=Rungs() if rungs else None,
                          constraints=Constraints(max_macs=MAX_MACS))
    # A random, high primary key: the Redis channel group (search-<id>) is then unique even
    # when another test run shares the Redis database.
    pk = random.SystemRandom().randrange(10**6, 10**9)
    search = Search.objects.create(
        pk=pk, owner=clip_row.owner, clip=clip_row, name=name, config=config.to_dict(),
        status=Search.Status.RUNNING, started_at=timezone.now() - timedelta(minutes=6))
    records[search.pk] = []
    return {"id": search.pk}


def emit(search: int, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    message = record_event(search, kind, payload)
    group_send(f"search-{search}", {"type": "search.event", "event": message})
    return message


def baselines(search: int, pretrained: bool = False,
              below: tuple[str, ...] = ()) -> dict[str, Any]:
    """bicubic, ESPCN and FSRCNN; `pretrained` adds IMDN's reference row, `below` puts those
    learned baselines under bicubic (flagged as the engine does)."""
    rows = [
        {"name": "bicubic", "learned": False, "psnr": BICUBIC_PSNR, "ssim": 0.8712, "macs": 0,
         "params": 0, "steps": 0, "latency_ms": None, "train_seconds": 0.0},
        {"name": "espcn", "learned": True, "psnr": 30.95, "ssim": 0.8931,
         "macs": 6_120_000_000, "params": 26_564, "steps": 600, "latency_ms": 118.0,
         "train_seconds": 61.0},
        {"name": "fsrcnn", "learned": True, "psnr": 31.18, "ssim": 0.8987,
         "macs": 3_910_000_000, "params": 12_464, "steps": 600, "latency_ms": 142.0,
         "train_seconds": 74.0},
    ]
    if below:
        for row in rows[1:]:
            row["below_reference"] = row["name"] in below
            if row["name"] in below:
                row["psnr"] = BICUBIC_PSNR - 0.21
    if pretrained:
        rows.append({"name": "imdn", "label": "IMDN (pretrained, not trained here)",
                     "learned": False, "pretrained": True, "psnr": 33.62, "ssim": 0.9312,
                     "macs": 159_500_000_000, "params": 694_404, "steps": 0,
                     "latency_ms": 2140.0, "train_seconds": 0.0})
    for row in rows:
        emit(search, "baseline_finished", {"baseline": row})
    return {"n": len(rows)}


def random_genome(rng: random.Random) -> tuple[Genome, int]:
    width = rng.choice((8, 12, 16, 24, 32))
    # Six slots, as in the first search space: the same draws, so the same synthetic trials.
    depth = rng.randint(1, 6)
    ops = tuple(rng.choice(("conv", "dwsep", "residual", "repconv")) for _ in range(6))
    kernels = tuple(rng.choice((3, 3, 5)) for _ in range(6))
    genome = Genome(width, depth, ops + ("conv",) * (MAX_BLOCKS - 6),
                    kernels + (3,) * (MAX_BLOCKS - 6), rng.choice(("relu", "lrelu", "prelu")))
    params = 3 * width * 9 + width * 3 * 4 * 9
    for op, k in genome.blocks:
        params += width * (k * k + width) if op == "dwsep" else width * width * k * k
    return genome, params


def synthetic_trial(number: int, reject: bool = False, cheap: bool = False) -> dict[str, Any]:
    """A plausible trial: cost from the genome, PSNR saturating with cost. Within the 5 G
    MACs budget it is trained; `reject` draws one over budget, rejected untrained; `cheap`
    one under 0.6 G MACs."""
    rng = random.Random(number * 7919 + 17)
    while True:
        genome, params = random_genome(rng)
        macs = params * LR_PIXELS
        if (macs > MAX_MACS) == reject and (not cheap or macs < 600_000_000):
            break
    if reject:
        return {
            "number": number, "genome": genome.to_dict(), "arch": genome.key(),
            "state": "rejected", "psnr": None, "ssim": None, "macs": macs, "params": params,
            "latency_ms": None, "latency_min_ms": None, "steps": None, "train_seconds": None,
            "final_loss": None, "reason": "breaks the macs constraint",
        }
    gain = 1.9 * (1 - math.exp(-macs / 2.2e9)) + rng.gauss(0, 0.22)
    psnr = BICUBIC_PSNR + 0.2 + gain
    steps = 600
    train_seconds = 20 + macs / 1e8 * rng.uniform(0.8, 1.2)
    return {
        "number": number, "genome": genome.to_dict(), "arch": genome.key(),
        "state": "complete", "psnr": psnr, "ssim": 0.88 + gain / 40, "macs": macs,
        "params": params, "latency_ms": 18 + macs / 5e7 * rng.uniform(0.8, 1.3),
        "latency_min_ms": None, "steps": steps, "train_seconds": train_seconds,
        "final_loss": 0.02 - gain / 200,
    }


def trials(search: int, numbers: list[int], n_trials: int, progress: bool,
           reject: tuple[int, ...] = (), rungs: bool = False, below: tuple[int, ...] = (),
           promoting: tuple[int, ...] = ()) -> dict[str, Any]:
    """Each trial as `run_search` reports it: started, training progress, finished (a
    rejected genome is only finished, and not counted). `rungs`: multi-fidelity, see
    `rung_trials`."""
    if rungs:
        return rung_trials(search, numbers, n_trials, progress, tuple(reject), tuple(below),
                           tuple(promoting))
    history = records.setdefault(search, [])
    out = []
    for number in numbers:
        record = synthetic_trial(number, reject=number in reject)
        counted = record["state"] != "rejected"
        if counted:
            emit(search, "trial_started", {"number": number, "genome": record["genome"],
                                           "macs": record["macs"]})
        if counted and progress:
            for step in (150, 300):
                train_progress(search, number, step, record["steps"], 0.05 - step / 12000)
        history.append(record)
        front = front_of(history, "macs")
        message = emit(search, "trial_finished", {
            "trial": record, "finished": sum(r["state"] != "rejected" for r in history),
            "n_trials": n_trials, "on_front": any(r["number"] == number for r in front),
            "counted": counted, "front": [r["number"] for r in front]})
        out.append({"number": number, "seq": message["seq"], "psnr": record["psnr"],
                    "macs": record["macs"], "arch": record["arch"]})
    return {"trials": out}


def rung_reached(number: int, below: tuple[int, ...], promoting: tuple[int, ...]) -> int:
    """The highest rung a synthetic candidate completes: one in three reaches the top, one in
    three the middle rung (many more than eta 4 would promote: a test wants a few of each).
    Below-reference ones reach the top rung; promoting ones stop under it."""
    if number in below:
        return TOP_RUNG
    reached = (TOP_RUNG, 1, 0)[number % 3]
    return min(reached, TOP_RUNG - 1) if number in promoting else reached


def rung_trials(search: int, numbers: list[int], n_trials: int, progress: bool,
                reject: tuple[int, ...], below: tuple[int, ...],
                promoting: tuple[int, ...]) -> dict[str, Any]:
    """A multi-fidelity search as `run_search` reports it: each candidate started and
    finished at every rung up to `rung_reached` (a promotion reuses the candidate's number),
    the records carrying `rung`, `rungs`, `promoting`, `below_reference` and `on_front`, the
    events `rung`, evaluations and the top-rung `front` (results above bicubic only). `below`
    candidates are cheap and score under bicubic; `promoting` ones are left training on to the
    next rung."""
    history = rung_records.setdefault(search, {})
    planned = sum(rung_reached(n, below, promoting) + 1 for n in range(n_trials)) + len(promoting)
    out = []
    for number in numbers:
        base = synthetic_trial(number, reject=number in reject, cheap=number in below)
        if base["state"] == "rejected":
            record = {**base, "rung": 0, "rungs": [], "promoting": None,
                      "below_reference": False, "on_front": False}
            history[number] = record
            message = emit(search, "trial_finished", {
                "trial": record, "finished": _counted(history), "n_trials": n_trials,
                "on_front": False, "counted": False, "rung": 0,
                "evaluations_done": evaluations.get(search, 0), "evaluations_planned": planned,
                "front": _rung_front(history)})
            out.append({"number": number, "seq": message["seq"], "psnr": None,
                        "macs": base["macs"], "arch": base["arch"], "rung": 0,
                        "below_reference": False})
            continue
        top_psnr = BICUBIC_PSNR - 0.3 if number in below else base["psnr"]
        reached = rung_reached(number, below, promoting)
        entries: list[dict[str, Any]] = []
        for rung in range(reached + 1):
            steps = RUNG_STEPS[rung]
            psnr = top_psnr - RUNG_GAIN_DB * (TOP_RUNG - rung)
            train_seconds = base["train_seconds"] * steps / 600
            entries.append({"rung": rung, "trial": number if rung == 0 else 1000 + number,
                            "steps": steps, "psnr": psnr, "ssim": 0.88 + (psnr - 30) / 40,
                            "train_seconds": train_seconds})
            emit(search, "trial_started", {"number": number, "genome": base["genome"],
                                           "macs": base["macs"], "rung": rung, "steps": steps})
            if progress:
                for step in (steps // 4, steps // 2):
                    train_progress(search, number, step, steps, 0.05 - step / 120000)
            record = {**base, "psnr": psnr, "ssim": entries[-1]["ssim"], "steps": steps,
                      "train_seconds": train_seconds,
                      "latency_ms": base["latency_ms"] if rung == TOP_RUNG else None,
                      "rung": rung, "rungs": list(entries), "promoting": None,
                      "below_reference": psnr <= BICUBIC_PSNR}
            history[number] = record
            evaluations[search] = evaluations.get(search, 0) + 1
            front = _rung_front(history)
            record["on_front"] = number in front
            message = emit(search, "trial_finished", {
                "trial": record, "finished": _counted(history), "n_trials": n_trials,
                "on_front": number in front, "counted": rung == 0, "rung": rung,
                "evaluations_done": evaluations[search], "evaluations_planned": planned,
                "front": front})
        if number in promoting:
            emit(search, "trial_started", {"number": number, "genome": base["genome"],
                                           "macs": base["macs"], "rung": reached + 1,
                                           "steps": RUNG_STEPS[reached + 1]})
            history[number]["promoting"] = reached + 1
        out.append({"number": number, "seq": message["seq"], "psnr": history[number]["psnr"],
                    "macs": base["macs"], "arch": base["arch"], "rung": reached,
                    "below_reference": history[number]["below_reference"]})
    return {"trials": out, "front": _rung_front(history), "evaluations_planned": planned}


def _counted(history: dict[int, dict[str, Any]]) -> int:
    return sum(r["state"] != "rejected" for r in history.values())


def _rung_front(history: dict[int, dict[str, Any]]) -> list[int]:
    """The top-rung front, from results above bicubic: the engine's rule."""
    pool = verdict_pool(list(history.values()), TOP_RUNG, BICUBIC_PSNR)
    return [r["number"] for r in front_of(pool, "macs")]


def baseline_progress(search: int, name: str, step: int, steps: int) -> dict:
    """A learned baseline training to the top rung: transient, like training progress."""
    event = {"seq": None, "kind": "baseline_progress", "name": name, "step": step,
             "steps": steps}
    group_send(f"search-{search}", {"type": "search.event", "event": event})
    return event


def train_progress(search: int, number: int, step: int, steps: int, loss: float) -> dict:
    event = {"seq": None, "kind": "training_progress", "number": number, "step": step,
             "steps": steps, "loss": loss}
    group_send(f"search-{search}", {"type": "search.event", "event": event})
    return event


def handle(command: dict[str, Any]) -> dict[str, Any]:
    op = command.pop("op")
    if op == "setup":
        return setup(**command)
    if op == "new_search":
        return new_search(**command)
    if op == "status":  # a row's status as a worker or the watchdog would leave it
        Search.objects.filter(pk=command["search"]).update(status=command["status"])
        return {}
    if op == "baselines":
        return baselines(**command)
    if op == "trials":
        return trials(**command)
    if op == "event":
        return emit(command["search"], command["kind"], command.get("payload", {}))
    if op == "progress":
        return train_progress(**command)
    if op == "baseline_progress":
        return baseline_progress(**command)
    if op == "finish":  # what the worker does when run_search returns
        from webapp.studio import tasks

        # The engine's report says whether the work is done: not when it was cancelled.
        complete = not Search.objects.get(pk=command["search"]).cancel_requested
        emit(command["search"], "search_finished", {
            "report_path": "", "hypervolume": 1.25, "n_finished": command["trained"],
            "complete": complete})
        tasks.finish(command["search"], {"hypervolume": 1.25, "complete": complete,
                                         "timing": {"trained_trials": command["trained"]}})
        return {}
    if op == "fail":  # what the worker does when the engine raises
        from webapp.studio import tasks

        tasks.fail(command["search"], command["error"])
        return {}
    raise ValueError(f"unknown op {op!r}")


def main() -> None:
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("op") == "quit":
            break
        try:
            answer = {"ok": True, "result": handle(command)}
        except Exception as error:  # report to the test, keep serving
            answer = {"ok": False, "error": f"{error!r}\n{traceback.format_exc()}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
