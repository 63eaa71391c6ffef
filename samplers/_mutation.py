"""Mutation operators of DisWOT's evolutionary search, as pure functions on params dicts.

The operators follow Algorithm 1 of the supplementary material (section C.1): pick one block of
the parent, mutate its kernel (another choice), its width (x a factor, a multiple of 8, at most
2048) and its depth (+-1). A parameter's *block* is its name up to the last ``.`` and its *role*
is the suffix after it: ``kernel``, ``width``, ``depth`` or, for anything else, ``other``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeGuard

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

__all__ = [
    "DEFAULT_WIDTH_FACTORS",
    "OTHER_PROB",
    "adjacent_value",
    "group_blocks",
    "mutate",
    "mutate_width",
    "other_choice",
    "param_block",
    "param_role",
    "scale_width",
    "shrink",
    "smaller_value",
]

#: Width multipliers of the paper (C.1).
DEFAULT_WIDTH_FACTORS: tuple[float, ...] = (0.67, 0.8, 1.25, 1.5)
#: Probability of also changing one ``other`` param (block type, stride) of the mutated block.
OTHER_PROB = 0.2
_STRUCTURAL = ("kernel", "width", "depth")


def param_block(name: str) -> str:
    """The block of a param: its name before the last ``.`` (``""`` for a name without one)."""
    return name.rpartition(".")[0]


def param_role(name: str) -> str:
    """``"kernel"``, ``"width"``, ``"depth"`` from the name's suffix, else ``"other"``."""
    suffix = name.rpartition(".")[2]
    return suffix if suffix in _STRUCTURAL else "other"


def group_blocks(names: Iterable[str]) -> dict[str, list[str]]:
    """Group param names by block, blocks and names in first-seen order."""
    blocks: dict[str, list[str]] = {}
    for name in names:
        blocks.setdefault(param_block(name), []).append(name)
    return blocks


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int_grid_size(dist: IntDistribution) -> int:
    return (dist.high - dist.low) // dist.step + 1


def _float_value(dist: FloatDistribution, u: float) -> float:
    """Map ``u`` in [0, 1) onto ``dist`` (log scale and step respected)."""
    if dist.log:
        return min(dist.high, math.exp(math.log(dist.low) + u * (math.log(dist.high) - math.log(dist.low))))
    if dist.step is not None:
        n = int(math.floor((dist.high - dist.low) / dist.step + 1e-8)) + 1
        return dist.low + dist.step * min(int(u * n), n - 1)
    return dist.low + u * (dist.high - dist.low)


def other_choice(value: Any, dist: BaseDistribution, rng: np.random.RandomState) -> Any:
    """A value of ``dist`` different from ``value``, uniformly (``value`` if there is none)."""
    if isinstance(dist, CategoricalDistribution):
        options = [c for c in dist.choices if c != value]
        return options[rng.randint(len(options))] if options else value
    if isinstance(dist, IntDistribution):
        n = _int_grid_size(dist)
        if n <= 1:
            return value
        k = rng.randint(n - 1)
        current = (value - dist.low) // dist.step
        if 0 <= current <= k and (value - dist.low) % dist.step == 0:
            k += 1  # skip the current grid point
        return dist.low + k * dist.step
    if isinstance(dist, FloatDistribution):
        return value if dist.single() else _float_value(dist, rng.random_sample())
    raise TypeError(f"unsupported distribution {dist!r}")


def _sorted_choices(dist: CategoricalDistribution) -> list[Any]:
    choices = list(dist.choices)
    return sorted(choices) if all(_is_number(c) for c in choices) else choices


def _neighbours(value: Any, dist: BaseDistribution) -> list[Any]:
    """The values one step below and above ``value`` in ``dist``'s order (those that exist)."""
    if isinstance(dist, IntDistribution):
        step = 1 if dist.log else dist.step
        return [v for v in (value - step, value + step) if dist.low <= v <= dist.high]
    if isinstance(dist, CategoricalDistribution):
        order = _sorted_choices(dist)
        if value not in order:
            return []
        i = order.index(value)
        return [order[j] for j in (i - 1, i + 1) if 0 <= j < len(order)]
    if isinstance(dist, FloatDistribution) and dist.step is not None:
        return [v for v in (value - dist.step, value + dist.step) if dist.low <= v <= dist.high]
    return []


def adjacent_value(value: Any, dist: BaseDistribution, rng: np.random.RandomState) -> Any:
    """Depth mutation: the value one step below or above (an existing neighbour, at random).

    For ``suggest_int(1, 7, step=2)`` the neighbours of 3 are 1 and 5; at a bound only the inward
    neighbour exists; categorical numeric choices are ordered by value.
    """
    options = _neighbours(value, dist)
    return options[rng.randint(len(options))] if options else value


def smaller_value(value: Any, dist: BaseDistribution, rng: np.random.RandomState) -> Any:
    """A smaller value of ``dist`` (a random smaller choice; one step down for numbers)."""
    if isinstance(dist, CategoricalDistribution):
        if not _is_number(value):
            return value
        options = [c for c in dist.choices if _is_number(c) and c < value]
        return options[rng.randint(len(options))] if options else value
    below = [v for v in _neighbours(value, dist) if v < value]
    return below[0] if below else value


def scale_width(value: Any, dist: BaseDistribution, factor: float, multiple: int, max_width: int) -> Any:
    """``value * factor`` rounded to the nearest multiple of ``multiple`` (halves up), at least
    ``multiple``, clamped to ``dist`` and to ``max_width``, and put on ``dist``'s grid (C.1).

    An int width whose grid is coarser than ``multiple`` (a short list of choices, e.g. a ViT's
    192/216/240) moves one grid point in the factor's direction instead: the paper's factors
    would jump over the middle choices (192 x 1.25 is 240).
    """
    target = max(multiple, math.floor(value * factor / multiple + 0.5) * multiple)
    if isinstance(dist, IntDistribution):
        high = max(dist.low, min(dist.high, max_width))
        if not dist.log and dist.step > multiple and factor != 1:
            moved = value + (dist.step if factor > 1 else -dist.step)
            return moved if dist.low <= moved <= high else value
        v = min(max(int(target), dist.low), high)
        step = 1 if dist.log else dist.step
        return dist.low + (v - dist.low) // step * step
    if isinstance(dist, CategoricalDistribution):
        numbers = [c for c in dist.choices if _is_number(c)]
        allowed = [c for c in numbers if c <= max_width] or numbers
        return min(allowed, key=lambda c: (abs(c - target), c)) if allowed else value
    if isinstance(dist, FloatDistribution):
        return min(max(float(target), dist.low), min(dist.high, max(dist.low, max_width)))
    raise TypeError(f"unsupported distribution {dist!r}")


def mutate_width(
    value: Any,
    dist: BaseDistribution,
    rng: np.random.RandomState,
    factors: Sequence[float],
    multiple: int,
    max_width: int,
) -> Any:
    """Width mutation: scale by a random factor; when it rounds back to ``value`` try the others."""
    for i in rng.permutation(len(factors)):
        new = scale_width(value, dist, factors[i], multiple, max_width)
        if new != value:
            return new
    return value


def _mutable_blocks(params: Mapping[str, Any], distributions: Mapping[str, BaseDistribution]) -> dict[str, list[str]]:
    return group_blocks(n for n in params if n in distributions and not distributions[n].single())


def mutate(
    params: Mapping[str, Any],
    distributions: Mapping[str, BaseDistribution],
    rng: np.random.RandomState,
    *,
    width_factors: Sequence[float] = DEFAULT_WIDTH_FACTORS,
    width_multiple: int = 8,
    max_width: int = 2048,
    other_prob: float = OTHER_PROB,
    max_tries: int = 32,
) -> dict[str, Any] | None:
    """Mutate one random block of ``params`` (DisWOT Algorithm 1); ``None`` if nothing can change.

    The block's kernel, width and depth are each mutated when present; a block with none of them
    changes one of its ``other`` params, and any block does so too with probability ``other_prob``.
    The child always differs from the parent (the draw is retried up to ``max_tries`` times).
    """
    blocks = _mutable_blocks(params, distributions)
    if not blocks:
        return None
    names_by_block = list(blocks.values())
    for _ in range(max_tries):
        names = names_by_block[rng.randint(len(names_by_block))]
        child = dict(params)
        others = []
        for name in names:
            role, dist = param_role(name), distributions[name]
            if role == "kernel":
                child[name] = other_choice(params[name], dist, rng)
            elif role == "width":
                child[name] = mutate_width(params[name], dist, rng, width_factors, width_multiple, max_width)
            elif role == "depth":
                child[name] = adjacent_value(params[name], dist, rng)
            else:
                others.append(name)
        if others and (len(others) == len(names) or rng.random_sample() < other_prob):
            name = others[rng.randint(len(others))]
            child[name] = other_choice(params[name], distributions[name], rng)
        if child != params:
            return child
    return None


def shrink(
    params: Mapping[str, Any],
    distributions: Mapping[str, BaseDistribution],
    rng: np.random.RandomState,
    *,
    width_factors: Sequence[float] = DEFAULT_WIDTH_FACTORS,
    width_multiple: int = 8,
) -> dict[str, Any] | None:
    """A smaller child for repairing an over-limit candidate; ``None`` when nothing can shrink.

    One random block (among those that can shrink) gets its width scaled by a factor below 1, its
    depth one step down and a smaller kernel, for each of these it has.
    """
    factors = [f for f in width_factors if f < 1]
    blocks = _mutable_blocks(params, distributions)
    names_by_block = list(blocks.values())
    for i in rng.permutation(len(names_by_block)):
        child = dict(params)
        for name in names_by_block[i]:
            role, dist, value = param_role(name), distributions[name], params[name]
            if role == "width" and factors:
                child[name] = mutate_width(value, dist, rng, factors, width_multiple, max(value, width_multiple))
            elif role in ("width", "depth", "kernel"):
                child[name] = smaller_value(value, dist, rng)
        if child != params:
            return child
    return None
