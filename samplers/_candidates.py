"""The candidates open to one trial, and the proposal made of one of them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ._history import params_key
from ._mutation import DEFAULT_WIDTH_FACTORS
from ._realize import Candidate, Constraint, SuggestFunc, _random_valid, realize

__all__ = ["MEMO_LIMIT", "Candidates", "Proposal", "Verdicts"]

_logger = logging.getLogger(__name__)

#: Bound on the memos of verdicts and of spent parents.
MEMO_LIMIT = 1 << 16


class Proposal(NamedTuple):
    """A trial's candidate, its parent's trial number and its origin: ``"random"``, ``"mutation"``
    or ``"fallback"`` (a duplicate or, when no valid child turns up, a random candidate)."""

    params: dict[str, Any]
    parent: int | None
    origin: str


class Verdicts:
    """The constraint's verdicts, memoised so that each candidate is checked once."""

    def __init__(self, constraint: Constraint | None) -> None:
        self.constraint = constraint
        self.memo: dict[Hashable, str | None] = {}  # params key -> reason, None when valid

    def __call__(self, params: dict[str, Any]) -> str | None:
        """``None`` when ``params`` are valid, else the constraint's reason."""
        if self.constraint is None:
            return None
        key = params_key(params)
        if key in self.memo:
            return self.memo[key]
        reason = self.constraint(params)
        if reason is not None and not isinstance(reason, str):
            raise TypeError(f"constraint must return None (valid) or a reason string, got {reason!r} for {params!r}")
        if len(self.memo) >= MEMO_LIMIT:
            self.memo.clear()
        self.memo[key] = reason
        return reason


@dataclass(frozen=True)
class Candidates:
    """The candidates open to one trial: what ``suggest_func`` requests, with the trial's
    ``forced`` (enqueued) params kept; ``check`` gives the constraint's verdict and
    ``is_duplicate`` tells a known candidate (always ``False`` when duplicates are allowed).
    ``rng`` is the sampler's generator; ``width_factors`` and ``width_multiple`` shape the repair
    of over-limit random candidates."""

    suggest_func: SuggestFunc
    rng: np.random.RandomState
    check: Callable[[dict[str, Any]], str | None]
    is_duplicate: Callable[[Mapping[str, Any]], bool]
    forced: Mapping[str, Any] | None = None
    width_factors: Sequence[float] = DEFAULT_WIDTH_FACTORS
    width_multiple: int = 8

    def realize(self, plan: Mapping[str, Any]) -> Candidate | None:
        """``plan`` realized through the suggest function (a param the plan lacks copies its
        neighbouring block's or is random); ``None`` when the space rejects it."""
        try:
            return realize(self.suggest_func, self.rng, plan, inherit=True, forced=self.forced)
        except ValueError as exc:  # the space rejects this combination
            _logger.debug("search space rejected %r: %s", plan, exc)
            return None

    def random_valid(self) -> Candidate:
        """A random candidate that passes the constraint, repaired by shrinking when it does not."""
        return _random_valid(
            self.suggest_func,
            self.check,
            self.rng,
            max_draws=50,
            max_repairs=20,
            width_factors=self.width_factors,
            width_multiple=self.width_multiple,
            forced=self.forced,
        )

    def random(self, attempts: int) -> Proposal:
        """A new random valid candidate in up to ``attempts`` draws, else the first one drawn."""
        first = None
        for _ in range(attempts):
            params = self.random_valid().params
            if not self.is_duplicate(params):
                return Proposal(params, None, "random")
            first = first or params
        assert first is not None
        return Proposal(first, None, "fallback")
