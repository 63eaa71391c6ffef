"""Pareto ranks, crowding distances and hypervolume of minimisation problems (numpy only).

Ranks and crowding follow NSGA-II (Deb et al., 2002): rank 0 is the non-dominated front, rank
``k`` the front of what remains once ranks ``< k`` are removed; crowding is the sum over
objectives of the normalised gap between a point's neighbours on its own front (boundary points
get infinity).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from optuna.study import StudyDirection

__all__ = ["contributions", "crowding_distance", "hypervolume", "losses", "pareto_ranks", "survivors"]


def losses(values: Sequence[Sequence[float]], directions: Sequence[StudyDirection]) -> np.ndarray:
    """``values`` as an ``(n, m)`` array to minimise: maximised objectives are negated."""
    signs = np.array([-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in directions])
    points: np.ndarray = np.asarray(values, dtype=float).reshape(-1, len(signs)) * signs
    return points


def _dominates(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``out[i, j]``: point ``a[i]`` dominates ``b[j]`` (no worse everywhere, better somewhere)."""
    le = (a[:, None, :] <= b[None, :, :]).all(axis=2)
    lt = (a[:, None, :] < b[None, :, :]).any(axis=2)
    out: np.ndarray = np.logical_and(le, lt)
    return out


def pareto_ranks(points: np.ndarray) -> np.ndarray:
    """Non-domination rank of each row of ``points`` (minimisation); 0 is the Pareto front."""
    points = np.asarray(points, dtype=float)
    n = len(points)
    ranks = np.full(n, -1, dtype=int)
    if n == 0:
        return ranks
    dominated_by = _dominates(points, points).sum(axis=0)  # how many points dominate each one
    beats = _dominates(points, points)
    rank = 0
    front = np.flatnonzero(dominated_by == 0)
    while front.size:
        ranks[front] = rank
        dominated_by = dominated_by - beats[front].sum(axis=0)
        dominated_by[ranks >= 0] = -1
        front = np.flatnonzero(dominated_by == 0)
        rank += 1
    return ranks


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each row of ``points`` (one front); boundaries get ``inf``."""
    points = np.asarray(points, dtype=float)
    n, m = points.shape if points.ndim == 2 else (len(points), 0)
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(points[:, j], kind="stable")
        column = points[order, j]
        span = column[-1] - column[0]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (column[2:] - column[:-2]) / span
    return distance


def hypervolume(points: np.ndarray, bound: Sequence[float] | np.ndarray) -> float:
    """The volume dominated by ``points`` (minimisation) and bounded by ``bound``.

    Exact: a sweep in two dimensions, slicing along the first objective above that (fine for the
    few hundred points of a study's front).
    """
    ref = np.asarray(bound, dtype=float)
    points = np.asarray(points, dtype=float).reshape(-1, len(ref))
    points = points[(points < ref).all(axis=1)]
    if len(points) == 0:
        return 0.0
    points = points[pareto_ranks(points) == 0]
    if len(ref) == 1:
        return float(ref[0] - points[:, 0].min())
    order = np.argsort(points[:, 0], kind="stable")
    points = points[order]
    if len(ref) == 2:
        ys = np.minimum.accumulate(points[:, 1])
        widths = np.diff(np.append(points[:, 0], ref[0]))
        return float(np.sum(widths * (ref[1] - ys)))
    volume = 0.0
    for i in range(len(points)):
        upper = points[i + 1, 0] if i + 1 < len(points) else ref[0]
        if upper > points[i, 0]:
            volume += (upper - points[i, 0]) * hypervolume(points[: i + 1, 1:], ref[1:])
    return volume


def contributions(points: np.ndarray, bound: Sequence[float] | np.ndarray) -> np.ndarray:
    """Each point's exclusive hypervolume: what the set's hypervolume loses without it.

    A dominated point, one of two equal points, or one not below ``bound`` contributes 0.
    Exact: a sweep in one and two dimensions; above, the sum over slices along the first objective
    of the contributions in the others (the same slicing as :func:`hypervolume`).
    """
    ref = np.asarray(bound, dtype=float)
    points = np.asarray(points, dtype=float).reshape(-1, len(ref))
    out = np.zeros(len(points))
    inside = np.flatnonzero((points < ref).all(axis=1))
    if len(inside) == 0:
        return out
    pts = points[inside]
    if len(ref) <= 2:
        out[inside] = _sweep(pts, ref)
        return out
    order = np.argsort(pts[:, 0], kind="stable")
    share = np.zeros(len(pts))
    for i in range(len(order)):
        upper = pts[order[i + 1], 0] if i + 1 < len(order) else ref[0]
        if upper > pts[order[i], 0]:  # the slice [x_i, upper) holds the points up to the i-th
            active = order[: i + 1]
            share[active] += (upper - pts[order[i], 0]) * contributions(pts[active, 1:], ref[1:])
    out[inside] = share
    return out


def _sweep(points: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """:func:`contributions` of points below ``ref`` in one or two objectives."""
    out = np.zeros(len(points))
    if len(ref) == 1:
        first = int(np.argmin(points[:, 0]))
        others = np.delete(points[:, 0], first)
        out[first] = (others.min() if len(others) else ref[0]) - points[first, 0]
        return out
    total = _area(points, ref)
    for i in np.flatnonzero(pareto_ranks(points) == 0):  # the others contribute nothing
        out[i] = total - _area(np.delete(points, i, axis=0), ref)
    return out


def _area(points: np.ndarray, ref: np.ndarray) -> float:
    """Two-objective hypervolume of points below ``ref`` (dominated ones may be among them)."""
    if len(points) == 0:
        return 0.0
    order = np.lexsort((points[:, 1], points[:, 0]))
    x, y = points[order, 0], np.minimum.accumulate(points[order, 1])
    return float(np.sum(np.diff(np.append(x, ref[0])) * (ref[1] - y)))


def normalised(points: np.ndarray) -> np.ndarray:
    """``points`` with each objective mapped to [0, 1] over its finite range (a constant one to 0;
    an infinite value to the nearer end)."""
    points = np.asarray(points, dtype=float)
    finite = [column[np.isfinite(column)] for column in points.T]
    low = np.array([c.min() if len(c) else 0.0 for c in finite])
    high = np.array([c.max() if len(c) else 0.0 for c in finite])
    span = high - low
    out: np.ndarray = (np.clip(points, low, high) - low) / np.where(span > 0, span, 1.0)
    return out


#: bounding point of normalised objectives for hypervolume contributions (nadir + 10% of the range)
BOUND = 1.1


def survivors(points: np.ndarray, size: int) -> np.ndarray:
    """Indices (ascending) of the ``size`` best rows of ``points`` (minimisation), as SMS-EMOA keeps
    its population: whole Pareto fronts in rank order, then the front that does not fit loses, one
    at a time, the member of least hypervolume contribution to that front (in objectives normalised
    over ``points``, bounding point 1.1), the lowest index first among equals."""
    points = np.asarray(points, dtype=float)
    if len(points) <= size:
        return np.arange(len(points))
    scaled = normalised(points)
    bound = np.full(points.shape[1], BOUND)
    ranks = pareto_ranks(points)
    fronts = [np.flatnonzero(ranks == r) for r in range(int(ranks.max()) + 1)]
    keep: list[int] = []
    for front in fronts:
        room = size - len(keep)
        members = front.tolist()
        while len(members) > room:
            del members[int(np.argmin(contributions(scaled[members], bound)))]
        keep.extend(members)
        if len(keep) == size:
            break
    return np.sort(np.array(keep, dtype=int))
