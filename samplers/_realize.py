"""Realizing a candidate: replay the space's suggest function on a recording trial.

The sampler never sees the search space except through its suggest function, which may be
conditional (a stage of depth 0 suggests nothing else). A *plan* (a possibly stale params dict,
such as a mutated parent) is turned into a candidate by running the suggest function on a
:class:`RecordingTrial` that answers each ``suggest_*`` from the plan when it can.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalChoiceType,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    check_distribution_compatibility,
)

from ._mutation import DEFAULT_WIDTH_FACTORS, param_block, shrink

__all__ = [
    "Candidate",
    "RecordingTrial",
    "is_compatible",
    "random_valid_params",
    "realize",
    "sample_value",
]

SuggestFunc = Callable[[optuna.trial.BaseTrial], object]
Constraint = Callable[[dict[str, Any]], str | None]


class Candidate(NamedTuple):
    """A realized candidate: the params the suggest function requested, and their distributions."""

    params: dict[str, Any]
    distributions: dict[str, BaseDistribution]


def is_compatible(dist: BaseDistribution, value: Any) -> bool:
    """Whether ``value`` (external representation) is a value of ``dist``."""
    try:
        return dist._contains(dist.to_internal_repr(value))
    except (ValueError, TypeError):
        return False


def sample_value(dist: BaseDistribution, rng: np.random.RandomState) -> Any:
    """A uniform random value of ``dist`` (log-uniform for ``log=True``)."""
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[rng.randint(len(dist.choices))]
    if isinstance(dist, IntDistribution):
        if dist.log:
            v = round(math.exp(rng.uniform(math.log(dist.low - 0.5), math.log(dist.high + 0.5))))
            return int(min(max(v, dist.low), dist.high))
        return dist.low + dist.step * rng.randint((dist.high - dist.low) // dist.step + 1)
    if isinstance(dist, FloatDistribution):
        if dist.log:
            return min(dist.high, math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))))
        if dist.step is not None:
            n = int(math.floor((dist.high - dist.low) / dist.step + 1e-8)) + 1
            return min(dist.high, dist.low + dist.step * rng.randint(n))
        return min(dist.high, rng.uniform(dist.low, dist.high))
    raise TypeError(f"unsupported distribution {dist!r}")


class RecordingTrial(optuna.trial.BaseTrial):
    """A trial that answers ``suggest_*`` from a plan and records what was requested.

    A requested param takes, in order: its ``forced`` value, its ``plan`` value, when ``inherit``
    the value of the same-suffix param of the nearest preceding block (``stage3.width`` copies
    ``stage2.width``), and otherwise a random value; each only when ``dist`` contains it.
    Everything but suggesting and reading the params raises.
    """

    def __init__(
        self,
        plan: Mapping[str, Any],
        rng: np.random.RandomState,
        *,
        inherit: bool = False,
        forced: Mapping[str, Any] | None = None,
    ) -> None:
        self._plan = plan
        self._forced = forced or {}
        self._rng = rng
        self._inherit = inherit
        self._params: dict[str, Any] = {}
        self._distributions: dict[str, BaseDistribution] = {}

    def _choose(self, name: str, dist: BaseDistribution) -> Any:
        for source in (self._forced, self._plan):
            if name in source and is_compatible(dist, source[name]):
                return source[name]
        if self._inherit and "." in name:
            block, suffix = param_block(name), name.rpartition(".")[2]
            for other in reversed(self._params):
                if other.rpartition(".")[2] == suffix and param_block(other) != block:
                    if is_compatible(dist, self._params[other]):
                        return self._params[other]
                    break
        return sample_value(dist, self._rng)

    def _suggest(self, name: str, dist: BaseDistribution) -> Any:
        if name in self._distributions:
            check_distribution_compatibility(self._distributions[name], dist)
            return self._params[name]
        value = self._choose(name, dist)
        self._params[name] = value
        self._distributions[name] = dist
        return value

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        return float(self._suggest(name, FloatDistribution(low, high, log=log, step=step)))

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return int(self._suggest(name, IntDistribution(low, high, log=log, step=step)))

    def suggest_categorical(  # type: ignore[override]
        self, name: str, choices: Sequence[CategoricalChoiceType]
    ) -> CategoricalChoiceType:
        value: CategoricalChoiceType = self._suggest(name, CategoricalDistribution(choices=choices))
        return value

    def suggest_uniform(self, name: str, low: float, high: float) -> float:
        return self.suggest_float(name, low, high)

    def suggest_loguniform(self, name: str, low: float, high: float) -> float:
        return self.suggest_float(name, low, high, log=True)

    def suggest_discrete_uniform(self, name: str, low: float, high: float, q: float) -> float:
        return self.suggest_float(name, low, high, step=q)

    @property
    def params(self) -> dict[str, Any]:
        return self._params

    @property
    def distributions(self) -> dict[str, BaseDistribution]:
        return self._distributions

    def _unsupported(self, what: str) -> RuntimeError:
        return RuntimeError(
            f"the search space called trial.{what} while the evolution sampler was realizing a "
            "candidate; a search space may only call trial.suggest_* (and read trial.params)"
        )

    def report(self, value: float, step: int) -> None:
        raise self._unsupported("report()")

    def should_prune(self) -> bool:
        raise self._unsupported("should_prune()")

    def set_user_attr(self, key: str, value: Any) -> None:
        raise self._unsupported("set_user_attr()")

    def set_constraint(self, key: str, value: float) -> None:
        raise self._unsupported("set_constraint()")

    @property
    def user_attrs(self) -> dict[str, Any]:
        raise self._unsupported("user_attrs")

    @property
    def datetime_start(self) -> datetime.datetime | None:
        raise self._unsupported("datetime_start")


def realize(
    suggest_func: SuggestFunc,
    rng: np.random.RandomState,
    plan: Mapping[str, Any] | None = None,
    *,
    inherit: bool = False,
    forced: Mapping[str, Any] | None = None,
) -> Candidate:
    """Run ``suggest_func`` on a :class:`RecordingTrial` and return what it requested."""
    trial = RecordingTrial(plan or {}, rng, inherit=inherit, forced=forced)
    suggest_func(trial)
    return Candidate(trial.params, trial.distributions)


def _random_valid(
    suggest_func: SuggestFunc,
    constraint: Constraint | None,
    rng: np.random.RandomState,
    *,
    max_draws: int,
    max_repairs: int,
    width_factors: Sequence[float],
    width_multiple: int,
    forced: Mapping[str, Any] | None,
) -> Candidate:
    reason: str | None = None
    for _ in range(max_draws):
        plan: Mapping[str, Any] = {}
        for _ in range(max_repairs + 1):
            try:
                candidate = realize(suggest_func, rng, plan, inherit=bool(plan), forced=forced)
            except ValueError as exc:  # the space rejects this combination
                reason = str(exc)
                break
            reason = None if constraint is None else constraint(candidate.params)
            if reason is None:
                return candidate
            smaller = shrink(
                candidate.params,
                candidate.distributions,
                rng,
                width_factors=width_factors,
                width_multiple=width_multiple,
            )
            if smaller is None:
                break
            plan = smaller
    raise RuntimeError(
        f"no candidate satisfies the constraint after {max_draws} random draws, each shrunk up to "
        f"{max_repairs} times (last reason: {reason}); loosen the limits or check the constraint"
    )


def random_valid_params(
    suggest_func: SuggestFunc,
    constraint: Constraint | None,
    rng: np.random.RandomState,
    *,
    max_draws: int = 50,
    max_repairs: int = 20,
    width_factors: Sequence[float] = DEFAULT_WIDTH_FACTORS,
    width_multiple: int = 8,
    forced: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A random candidate that passes ``constraint`` (``None`` = always valid).

    Each random draw that fails is repaired by shrinking mutations (:func:`shrink`) on random
    blocks, up to ``max_repairs`` times, before a new draw; ``constraint`` is called once per
    candidate. Raises ``RuntimeError`` with the last reason when ``max_draws`` draws all fail.
    """
    return _random_valid(
        suggest_func,
        constraint,
        rng,
        max_draws=max_draws,
        max_repairs=max_repairs,
        width_factors=width_factors,
        width_multiple=width_multiple,
        forced=forced,
    ).params
