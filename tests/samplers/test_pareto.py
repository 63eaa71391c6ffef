"""Pareto ranks, crowding distance and hypervolume against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from optuna.study import StudyDirection

from diswot.samplers._pareto import crowding_distance, hypervolume, losses, pareto_ranks


def brute_ranks(points: np.ndarray) -> list[int]:
    ranks = [-1] * len(points)
    left, rank = set(range(len(points))), 0
    while left:
        front = {
            i for i in left
            if not any((points[j] <= points[i]).all() and (points[j] < points[i]).any() for j in left)
        }
        for i in front:
            ranks[i] = rank
        left -= front
        rank += 1
    return ranks


@pytest.mark.parametrize("m", [2, 3])
def test_ranks_match_brute_force(m: int) -> None:
    rng = np.random.default_rng(m)
    points = rng.integers(0, 6, size=(60, m)).astype(float)  # many ties and duplicates
    assert pareto_ranks(points).tolist() == brute_ranks(points)
    assert pareto_ranks(np.empty((0, m))).tolist() == []


def test_losses_negate_maximised_objectives() -> None:
    out = losses([(1.0, 2.0)], [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE])
    assert out.tolist() == [[-1.0, 2.0]]


def test_crowding_distance() -> None:
    points = np.array([[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]])
    d = crowding_distance(points)
    assert np.isinf(d[0]) and np.isinf(d[3])
    assert d[1] == pytest.approx(3 / 4 + 3 / 4) and d[2] == pytest.approx(3 / 4 + 2 / 4)
    assert np.isinf(crowding_distance(points[:2])).all()


def grid_volume(points: np.ndarray, ref: tuple[int, ...]) -> int:
    """Unit cells [c, c+1) below ``ref`` dominated by an integer point."""
    return sum(
        any((p <= np.array(cell)).all() for p in points)
        for cell in itertools.product(*(range(int(lo), r) for lo, r in zip(points.min(axis=0), ref)))
    )


@pytest.mark.parametrize("m", [1, 2, 3])
def test_hypervolume_matches_counting_cells(m: int) -> None:
    rng = np.random.default_rng(10 + m)
    points = rng.integers(0, 8, size=(25, m)).astype(float)
    ref = (8,) * m
    assert hypervolume(points, ref) == pytest.approx(grid_volume(points, ref))
    assert hypervolume(points + 10, ref) == 0.0  # nothing below the reference point
