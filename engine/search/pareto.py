"""Pareto front, hypervolume and knee point of (quality up, cost down) pairs: pure functions."""

from __future__ import annotations

import math
from collections.abc import Sequence

Point = tuple[float, float]  # (quality: higher is better, cost: lower is better)


def dominates(a: Point, b: Point) -> bool:
    """a is at least as good on both and strictly better on one."""
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def non_dominated(points: Sequence[Point]) -> list[int]:
    """Indices of the non-dominated points, ordered by increasing cost. Of identical points
    only the first is kept, so the front has no duplicates."""
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0], i))
    front: list[int] = []
    best_quality = -math.inf
    for i in order:
        if points[i][0] > best_quality:
            front.append(i)
            best_quality = points[i][0]
    return front


def hypervolume(points: Sequence[Point], reference: Point) -> float:
    """Area dominated by `points` and bounded by `reference` (quality floor, cost ceiling).

    Points not better than the reference on both axes add nothing.
    """
    useful = [p for p in points if p[0] > reference[0] and p[1] < reference[1]]
    area = 0.0
    best_quality = reference[0]
    # Sweep from the cheapest: each front point adds a slab up to the cost ceiling.
    for i in non_dominated(useful):
        quality, cost = useful[i]
        area += (quality - best_quality) * (reference[1] - cost)
        best_quality = quality
    return area


def knee_point(points: Sequence[Point]) -> int | None:
    """Index of the front point farthest from the line joining the front's extremes
    (normalised axes): the best trade-off when a user wants one answer."""
    front = non_dominated(points)
    if not front:
        return None
    if len(front) < 3:
        return front[-1] if len(front) == 2 else front[0]
    (q0, c0), (q1, c1) = points[front[0]], points[front[-1]]
    dq, dc = (q1 - q0) or 1.0, (c1 - c0) or 1.0

    def distance(i: int) -> float:
        q, c = (points[i][0] - q0) / dq, (points[i][1] - c0) / dc
        return abs(q - c) / math.sqrt(2.0)

    return max(front[1:-1], key=distance)
