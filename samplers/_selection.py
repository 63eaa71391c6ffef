"""Selection strategies: which complete trials form the population and how tournaments rank them.

Single objective: regularised evolution, DisWOT's search (Dong et al., CVPR 2023, appendix C.1):
the last ``P`` complete trials, the best of ``S`` drawn is the parent. Several objectives: an
elitist population as SMS-EMOA keeps it (Beume et al., 2007): the ``P`` best by non-domination
rank, then by hypervolume contribution.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from ._pareto import BOUND, contributions, crowding_distance, losses, normalised, pareto_ranks, survivors

__all__ = ["BaseSelection", "Parents", "RegularizedSelection", "SMSEMOASelection", "check_int"]


def check_int(name: str, value: object, minimum: int) -> None:
    """Refuse ``value`` unless it is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


class Parents(NamedTuple):
    """A population ready for tournaments."""

    trials: list[FrozenTrial]  # the members, ascending by number
    fitness: list[Any]  # each member's tournament key; the larger key wins
    tournament_size: int  # members drawn per tournament
    elitist: bool  # members stay while among the best (see BaseSelection.elitist)


class BaseSelection(abc.ABC):
    """Keeps the population from which tournaments draw parents, and ranks its members.

    The sampler offers the trials completed since its last proposal (:meth:`survivors`), so the
    cost per trial does not grow with the study, and asks for tournaments only once
    :attr:`warm_up` trials are complete (random candidates until then).

    Args:
        population_size: ``P``, the number of members (paper: 20).
        tournament_size: ``S``, the members drawn per tournament, without replacement (paper: 10).
    """

    #: Members stay while they are among the best instead of ageing out, so a parent whose
    #: neighbourhood is spent would stay: when no tournament finds a new child, a new random
    #: candidate is preferred to a duplicate.
    elitist: ClassVar[bool] = False

    def __init__(self, *, population_size: int = 20, tournament_size: int = 10) -> None:
        check_int("population_size", population_size, 1)
        check_int("tournament_size", tournament_size, 1)
        if tournament_size > population_size:
            raise ValueError(
                f"tournament_size ({tournament_size}) cannot exceed population_size "
                f"({population_size}): the tournament draws members without replacement; "
                "lower tournament_size or raise population_size (paper: P=20, S=10)"
            )
        self.population_size = population_size
        self.tournament_size = tournament_size

    @property
    def warm_up(self) -> int:
        """Complete trials needed before the first tournament: a full population."""
        return self.population_size

    @abc.abstractmethod
    def survivors(
        self, population: list[FrozenTrial], newcomers: list[FrozenTrial], directions: Sequence[StudyDirection]
    ) -> list[FrozenTrial]:
        """The next population, ascending by number, from the last one and the trials completed since."""

    @abc.abstractmethod
    def fitness(self, population: list[FrozenTrial], directions: Sequence[StudyDirection]) -> list[Any]:
        """Each member's tournament key; the larger key wins."""

    def __call__(
        self, population: list[FrozenTrial], newcomers: list[FrozenTrial], directions: Sequence[StudyDirection]
    ) -> Parents:
        """The next population with its tournament keys."""
        members = self.survivors(population, newcomers, directions)
        return Parents(members, self.fitness(members, directions), self.tournament_size, self.elitist)


class RegularizedSelection(BaseSelection):
    """Regularised evolution (DisWOT C.1): the last ``P`` complete trials; members age out.

    A tournament prefers the better objective value; with several objectives, the lower Pareto
    rank, then the larger crowding distance (NSGA-II's crowded comparison).
    """

    def survivors(
        self, population: list[FrozenTrial], newcomers: list[FrozenTrial], directions: Sequence[StudyDirection]
    ) -> list[FrozenTrial]:
        return sorted(population + newcomers, key=lambda t: t.number)[-self.population_size :]

    def fitness(self, population: list[FrozenTrial], directions: Sequence[StudyDirection]) -> list[Any]:
        return _fitness([t.values for t in population], directions)


class SMSEMOASelection(BaseSelection):
    """An elitist population (SMS-EMOA, Beume et al. 2007): the ``P`` best complete trials.

    Trials completed since the last proposal join the population ``P`` at a time; whole Pareto
    fronts survive first and the front that does not fit loses its members of least hypervolume
    contribution (objectives normalised over the candidates, bounding point 1.1;
    :func:`~diswot.samplers._pareto.survivors`). Tournaments start once ``S`` trials are complete
    and prefer the lower Pareto rank, then the larger hypervolume contribution to the member's
    front, then the larger crowding distance, so parents are the front members that cover most.
    """

    elitist = True

    @property
    def warm_up(self) -> int:
        """Complete trials needed before the first tournament: one tournament's worth."""
        return self.tournament_size

    def survivors(
        self, population: list[FrozenTrial], newcomers: list[FrozenTrial], directions: Sequence[StudyDirection]
    ) -> list[FrozenTrial]:
        size = self.population_size
        for start in range(0, len(newcomers), size):
            candidates = sorted(population + newcomers[start : start + size], key=lambda t: t.number)
            points = losses([t.values for t in candidates], directions)
            population = [candidates[i] for i in survivors(points, size)]
        return population

    def fitness(self, population: list[FrozenTrial], directions: Sequence[StudyDirection]) -> list[Any]:
        values = [t.values for t in population]
        return _fitness(values, directions) if len(directions) == 1 else _pareto_fitness(values, directions)


def _fitness(values: Sequence[Sequence[float]], directions: Sequence[StudyDirection]) -> list[Any]:
    """Tournament keys, larger is better: the signed value of one objective; with several,
    ``(-Pareto rank, crowding distance)`` within the population (NSGA-II's crowded comparison)."""
    points = losses(values, directions)
    if len(directions) == 1:
        return [float(v) for v in -points[:, 0]]
    ranks = pareto_ranks(points)
    crowding = np.zeros(len(points))
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        crowding[members] = crowding_distance(points[members])
    return list(zip((-ranks).tolist(), crowding.tolist()))


def _pareto_fitness(values: Sequence[Sequence[float]], directions: Sequence[StudyDirection]) -> list[Any]:
    """Tournament keys of several objectives, larger is better: ``(-Pareto rank, hypervolume
    contribution to its front, crowding distance)``, the contribution in objectives normalised over
    the population with the bounding point 1.1 (SMS-EMOA's measure), crowding breaking its ties."""
    ranked = _fitness(values, directions)
    points = normalised(losses(values, directions))
    ranks = np.array([-negative for negative, _ in ranked])
    share = np.zeros(len(points))
    bound = np.full(points.shape[1], BOUND)
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        share[members] = contributions(points[members], bound)
    return [(negative, s, crowding) for (negative, crowding), s in zip(ranked, share.tolist())]
