"""Child generation of DisWOT's evolution (Dong et al., CVPR 2023, appendix C.1, Algorithm 1):
a tournament picks a parent, one of its blocks is mutated, the child is realized and checked."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Hashable, Sequence

from optuna.trial import FrozenTrial

from ._candidates import MEMO_LIMIT, Candidates, Proposal
from ._history import params_key
from ._mutation import DEFAULT_WIDTH_FACTORS, mutate
from ._realize import Candidate
from ._selection import Parents, check_int

__all__ = ["ChildGeneration", "MutationChildGeneration"]

_logger = logging.getLogger(__name__)

#: ``f(candidates, parents)``: a trial's proposal from a population ready for tournaments.
ChildGeneration = Callable[[Candidates, Parents], Proposal]

# Consecutive attempts from one parent architecture that bring no new valid child before the
# parent counts as spent (all its children seem known or invalid) and leaves later tournaments.
_SPENT_LIMIT = 10


class MutationChildGeneration:
    """A mutated child of a tournament's winner (DisWOT C.1).

    Each attempt draws ``tournament_size`` members without replacement; the one of largest
    fitness is the parent, one of its blocks is mutated (kernel, width or depth;
    :func:`~diswot.samplers._mutation.mutate`), the child is realized through the suggest function
    and checked against the constraint, so an over-limit student is never proposed. Up to
    ``max_attempts`` attempts look for a valid child unlike any trial of the study that did not
    fail; failing that, a valid duplicate, a valid child of the last winner even if known, and as
    a last resort a random valid candidate is proposed (origin ``"fallback"``). With an elitist
    population (:attr:`~diswot.samplers._selection.BaseSelection.elitist`) a new random candidate
    comes before a duplicate. A parent whose last 10 children were all known or invalid counts as
    spent and is passed over in tournaments (a memo, so exhausted neighbourhoods cost little).

    Args:
        max_attempts: Tournaments per trial looking for a valid, new child.
        width_factors: Multipliers for width mutations (paper: 0.67, 0.8, 1.25, 1.5).
        width_multiple: A mutated width is rounded to a multiple of this.
        max_width: A mutated width is at most this.
    """

    def __init__(
        self,
        *,
        max_attempts: int = 100,
        width_factors: Sequence[float] = DEFAULT_WIDTH_FACTORS,
        width_multiple: int = 8,
        max_width: int = 2048,
    ) -> None:
        check_int("max_attempts", max_attempts, 1)
        factors = tuple(width_factors) if isinstance(width_factors, Sequence) else None
        if (
            not factors
            or any(isinstance(f, bool) or not isinstance(f, (int, float)) for f in factors)
            or not all(math.isfinite(f) and f > 0 and f != 1 for f in factors)
        ):
            raise ValueError(
                "width_factors must be a non-empty sequence of positive numbers other than 1, "
                f"e.g. (0.67, 0.8, 1.25, 1.5); got {width_factors!r}"
            )
        check_int("width_multiple", width_multiple, 1)
        check_int("max_width", max_width, width_multiple)
        self.max_attempts = max_attempts
        self.width_factors = factors
        self.width_multiple = width_multiple
        self.max_width = max_width
        self._misses: dict[Hashable, int] = {}  # parent params key -> consecutive failed children

    def __call__(self, candidates: Candidates, parents: Parents) -> Proposal:
        """A child of ``parents`` among ``candidates``, or a fallback."""
        proposal = self._tournaments(candidates, parents)
        if proposal.origin == "fallback" and parents.elitist:  # spent neighbourhoods do not age out
            fresh = candidates.random(self.max_attempts)
            if fresh.origin == "random":
                return fresh
        return proposal

    def _tournaments(self, candidates: Candidates, parents: Parents) -> Proposal:
        """Tournaments until the winner has a valid child unlike the study's trials."""
        population, fitness = parents.trials, parents.fitness
        keys = [params_key(t.params) for t in population]
        size = min(parents.tournament_size, len(population))
        tried: set[Hashable] = set()
        duplicate: Proposal | None = None
        sample: list[int] = []
        for _ in range(self.max_attempts):
            sample = candidates.rng.permutation(len(population))[:size].tolist()
            live = [i for i in sample if self._misses.get(keys[i], 0) < _SPENT_LIMIT]
            if not live:
                break
            best = max(live, key=fitness.__getitem__)
            parent = population[best]
            child = self._child(candidates, parent, tried)
            if child is not None:
                if not candidates.is_duplicate(child.params):
                    if candidates.check(child.params) is None:
                        self._misses.pop(keys[best], None)
                        return Proposal(child.params, parent.number, "mutation")
                elif duplicate is None and candidates.check(child.params) is None:
                    duplicate = Proposal(child.params, parent.number, "fallback")
            self._misses[keys[best]] = self._misses.get(keys[best], 0) + 1
        if len(self._misses) >= MEMO_LIMIT:
            self._misses.clear()
        if duplicate is not None:
            return duplicate
        winner = population[max(sample, key=fitness.__getitem__)] if sample else None
        return self._fallback(candidates, winner)

    def _fallback(self, candidates: Candidates, winner: FrozenTrial | None) -> Proposal:
        """A valid child of ``winner`` even if known, else a random valid candidate."""
        if winner is not None:  # every sampled parent is spent
            for _ in range(self.max_attempts):
                child = self._child(candidates, winner, None)
                if child is not None and candidates.check(child.params) is None:
                    return Proposal(child.params, winner.number, "fallback")
        _logger.debug("no valid child in %d attempts; proposing a random candidate", self.max_attempts)
        return Proposal(candidates.random_valid().params, None, "fallback")

    def _child(self, candidates: Candidates, parent: FrozenTrial, tried: set[Hashable] | None) -> Candidate | None:
        """A realized mutation of ``parent``; ``None`` if it is unchanged, rejected or in ``tried``."""
        plan = mutate(
            parent.params,
            parent.distributions,
            candidates.rng,
            width_factors=self.width_factors,
            width_multiple=self.width_multiple,
            max_width=self.max_width,
        )
        if plan is None:
            return None
        if tried is not None:
            plan_key = params_key(plan)
            if plan_key in tried:
                return None
            tried.add(plan_key)
        child = candidates.realize(plan)
        return None if child is None or child.params == parent.params else child
