"""Shared fixtures for the space tests: real Optuna trials from a seeded RandomSampler."""

from __future__ import annotations

from typing import Callable, Hashable

import optuna
import pytest
import torch

from diswot.spaces import Space

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _random_archs(space: Space, n: int, seed: int = 0) -> list[tuple[dict, Hashable]]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        arch = space.suggest(trial)
        out.append((dict(trial.params), arch))
        study.tell(trial, 0.0)
    return out


@pytest.fixture
def random_archs() -> Callable[..., list[tuple[dict, Hashable]]]:
    """``random_archs(space, n, seed=0)`` -> ``[(trial.params, arch), ...]`` from real trials."""
    return _random_archs


def _built_params(space: Space, arch: Hashable, num_classes: int | None = None) -> int:
    with torch.device("meta"):
        net = space.build(arch, num_classes)
    return sum(p.numel() for p in net.parameters())


@pytest.fixture
def built_params() -> Callable[..., int]:
    """``built_params(space, arch, num_classes=None)``: parameters of the network built on meta."""
    return _built_params
