"""Toy search spaces for the sampler tests (no torch): an S2-like conditional space and S0."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import optuna
import pytest

LIMIT = 300


def toy_space(trial: optuna.trial.BaseTrial) -> None:
    """S2-like: a stem, then three blocks whose depth 0 means absent (no other params)."""
    trial.suggest_int("stem.width", 8, 64, step=8)
    for i in range(1, 4):
        if trial.suggest_int(f"b{i}.depth", 0, 3) == 0:
            continue
        trial.suggest_categorical(f"b{i}.type", ["basic", "bottleneck"])
        trial.suggest_categorical(f"b{i}.kernel", [3, 5, 7])
        trial.suggest_int(f"b{i}.width", 8, 256, step=8)
        trial.suggest_categorical(f"b{i}.stride", [1, 2])


def toy_cost(params: dict[str, Any]) -> int:
    """Sum of width * depth over the present blocks."""
    return sum(params.get(f"b{i}.width", 0) * params[f"b{i}.depth"] for i in range(1, 4))


def toy_constraint(params: dict[str, Any]) -> str | None:
    cost = toy_cost(params)
    return None if cost <= LIMIT else f"cost {cost} > {LIMIT}"


def toy_objective(trial: optuna.trial.Trial) -> float:
    """Bigger is better, so the search presses against the limit; fails on an over-limit trial."""
    toy_space(trial)
    assert toy_constraint(trial.params) is None, trial.params
    kernels = sum(trial.params.get(f"b{i}.kernel", 0) for i in range(1, 4))
    return toy_cost(trial.params) + kernels + trial.params["stem.width"] / 8


def s0_space(trial: optuna.trial.BaseTrial) -> None:
    """S0: three stages of 1, 3, 5 or 7 blocks (64 architectures)."""
    for i in range(1, 4):
        trial.suggest_int(f"stage{i}.depth", 1, 7, step=2)


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def toy() -> SimpleNamespace:
    """The toy spaces, constraint and objective (conftest is not importable under importlib mode)."""
    return SimpleNamespace(
        space=toy_space,
        cost=toy_cost,
        constraint=toy_constraint,
        objective=toy_objective,
        limit=LIMIT,
        s0_space=s0_space,
    )
