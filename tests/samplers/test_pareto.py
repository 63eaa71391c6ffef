"""Pareto ranks, crowding distance and hypervolume against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from optuna.study import StudyDirection

from diswot.samplers._pareto import (
    contributions,
    crowding_distance,
    hypervolume,
    losses,
    normalised,
    pareto_ranks,
    survivors,
)


def brute_ranks(points: np.ndarray) -> list[int]:
    ranks = [-1] * len(points)
    left, rank = set(range(len(points))), 0
    while left:
        front = {
            i for i in left if not any((points[j] <= points[i]).all() and (points[j] < points[i]).any() for j in left)
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
    assert hypervolume(points + 10, ref) == 0.0  # nothing below the bounding point


@pytest.mark.parametrize("m", [1, 2, 3])
def test_contributions_match_removing_each_point(m: int) -> None:
    rng = np.random.default_rng(20 + m)
    for size in (1, 2, 7, 30):
        points = rng.integers(0, 6, size=(size, m)).astype(float)  # ties, duplicates, dominated points
        for ref in ((6.0,) * m, (4.5,) * m):  # some points beyond the reference
            total = hypervolume(points, ref)
            brute = [total - hypervolume(np.delete(points, i, axis=0), ref) for i in range(size)]
            assert contributions(points, ref) == pytest.approx(brute)


def test_contributions_of_a_front() -> None:
    points = np.array([[0.0, 3.0], [1.0, 1.0], [3.0, 0.0], [2.0, 2.0], [1.0, 1.0]])
    assert contributions(points, (4.0, 4.0)).tolist() == [1.0, 0.0, 1.0, 0.0, 0.0]  # twins cover each other
    assert contributions(points[:3], (4.0, 4.0)).tolist() == [1.0, 4.0, 1.0]
    assert contributions(np.array([[1.0], [3.0], [1.0]]), (5.0,)).tolist() == [0.0, 0.0, 0.0]
    assert contributions(np.array([[1.0], [3.0]]), (5.0,)).tolist() == [2.0, 0.0]


def test_normalised_maps_each_objective_onto_its_range() -> None:
    out = normalised(np.array([[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]]))
    assert out.tolist() == [[0.0, 0.0], [1.0, 0.0], [0.5, 0.0]]  # a constant objective maps to 0
    out = normalised(np.array([[1.0, np.inf], [3.0, 1.0], [-np.inf, 2.0]]))
    assert out.tolist() == [[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]  # infinities at the ends of the finite range


def test_survivors_keep_whole_fronts_then_the_largest_contributions() -> None:
    front = [[0.0, 10.0], [1.0, 6.0], [1.2, 5.9], [5.0, 5.0], [10.0, 0.0]]
    second = [[2.0, 11.0], [11.0, 1.0]]
    points = np.array(second + front)
    assert survivors(points, 7).tolist() == list(range(7))
    assert survivors(points, 5).tolist() == [2, 3, 4, 5, 6]  # the front, whole
    # one front member must go: (1.2, 5.9) is nearly covered by (1, 6) and (5, 5), and goes
    assert survivors(points, 4).tolist() == [2, 3, 5, 6]
    # of the second front, (11, 1) covers more (normalised: 0.1 x 1.01 against 0.92 x 0.1)
    assert survivors(points, 6).tolist() == [1, 2, 3, 4, 5, 6]
    twins = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert survivors(twins, 2).tolist() == [1, 2]  # of two equal points the later stays


def test_survivors_on_random_points_are_never_dominated_by_a_loser() -> None:
    rng = np.random.default_rng(3)
    points = rng.random((60, 3))
    keep = survivors(points, 20)
    assert len(keep) == 20 and len(set(keep.tolist())) == 20
    ranks = pareto_ranks(points)
    lost = np.setdiff1d(np.arange(60), keep)
    assert ranks[keep].max() <= ranks[lost].min()
