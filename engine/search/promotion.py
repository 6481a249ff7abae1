"""Multi-objective asynchronous successive halving (MO-ASHA): which candidates move up a rung.

Within a rung, candidates are ordered by non-dominated sorting of (quality up, cost down) and,
within one non-dominated rank, by crowding distance (larger first; cost on a log axis, since
costs span orders of magnitude), so cheap and costly candidates both move up: never by quality
alone (Schmucker et al. 2021, "Multi-objective ASHA"; Syne Tune's MOASHA).

Promotion is asynchronous (ASHA, Li et al. 2020): a candidate moves up as soon as it is among
the best 1/eta of the results its rung has so far, with no wait for the rung to fill. The number
promoted from a rung never exceeds floor(n / eta) while the rung can still grow, and reaches
ceil(n / eta) once it is closed, so even a small search puts at least one candidate on the top
rung. The anchors (the baseline seeds) move up outside that quota. Pure functions: the study
(engine.search.scheduler) supplies the entries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from engine.search.pareto import dominates

Point = tuple[float, float]  # (quality: higher is better, cost: lower is better)


@dataclass(frozen=True)
class RungEntry:
    candidate: int  # the candidate's id (its first trial's number)
    quality: float
    cost: float


def nondominated_ranks(points: Sequence[Point]) -> list[int]:
    """Rank of each point: 0 for the non-dominated set, 1 for the next layer, ..."""
    remaining = set(range(len(points)))
    ranks = [0] * len(points)
    rank = 0
    while remaining:
        layer = {i for i in remaining
                 if not any(dominates(points[j], points[i]) for j in remaining if j != i)}
        for i in layer:
            ranks[i] = rank
        remaining -= layer
        rank += 1
    return ranks


def crowding_distances(points: Sequence[Point]) -> list[float]:
    """NSGA-II crowding distance of each point within `points` (one rank); the extremes of
    each objective get infinity. Cost is compared on a log axis."""
    n = len(points)
    if n <= 2:
        return [math.inf] * n
    axes = [[p[0] for p in points], [math.log10(max(p[1], 1e-12)) for p in points]]
    distance = [0.0] * n
    for values in axes:
        order = sorted(range(n), key=lambda i: values[i])
        span = values[order[-1]] - values[order[0]]
        distance[order[0]] = distance[order[-1]] = math.inf
        if span <= 0:
            continue
        for k in range(1, n - 1):
            distance[order[k]] += (values[order[k + 1]] - values[order[k - 1]]) / span
    return distance


def promotion_order(entries: Sequence[RungEntry]) -> list[RungEntry]:
    """Best first: lower non-dominated rank, then larger crowding distance, then candidate id
    (a deterministic tie-break, so every worker computes the same order)."""
    points = [(e.quality, e.cost) for e in entries]
    ranks = nondominated_ranks(points)
    crowding = [0.0] * len(entries)
    for rank in set(ranks):
        members = [i for i, r in enumerate(ranks) if r == rank]
        for i, d in zip(members, crowding_distances([points[i] for i in members]), strict=True):
            crowding[i] = d
    order = sorted(range(len(entries)),
                   key=lambda i: (ranks[i], -crowding[i], entries[i].candidate))
    return [entries[i] for i in order]


def promotion_quota(finished: int, eta: int, closed: bool) -> int:
    """How many of a rung's `finished` candidates may move up."""
    return math.ceil(finished / eta) if closed else finished // eta


def promotable(entries: Sequence[RungEntry], promoted: set[int], eta: int,
               closed: bool, anchors: frozenset[int] = frozenset()) -> list[int]:
    """Candidates of one rung to move up now: the anchors not yet promoted first, then, best
    first, those among the best `quota` of the others not yet promoted, while fewer than
    `quota` of the others have been.

    Anchors (the seeds nearest to the handcrafted baselines) move up every rung outside the
    quota: the top rung then always holds the nets the search is compared with, so its
    verdicts never end below them for want of a promotion (a slow starter such as FSRCNN
    ranks low after a short rung and would otherwise stay there)."""
    waiting_anchors = sorted(e.candidate for e in entries
                             if e.candidate in anchors and e.candidate not in promoted)
    others = [e for e in entries if e.candidate not in anchors]
    quota = promotion_quota(len(others), eta, closed)
    room = quota - len(promoted - anchors)
    if room <= 0:
        return waiting_anchors
    best = [e.candidate for e in promotion_order(others)[:quota]]
    return waiting_anchors + [c for c in best if c not in promoted][:room]
