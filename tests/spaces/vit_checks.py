"""Checks shared by the ViT space tests: parameters on the meta device, a short evolution."""

from __future__ import annotations

from typing import Any, Callable, Hashable

import optuna
import torch

from diswot.samplers import EvolutionSampler, lineage
from diswot.spaces import Limits, Space


def params_on_meta(space: Space[Any], arch: Hashable, num_classes: int | None = None) -> int:
    """Parameters of the network built on the meta device (no memory, no compute)."""
    with torch.device("meta"):
        net = space.build(arch, num_classes)
    return sum(p.numel() for p in net.parameters())


def evolve(
    space: Space[Any],
    limits: Limits,
    *,
    n_trials: int,
    extra: Callable[[Hashable], str | None] | None = None,
) -> set[str]:
    """Run the evolutionary sampler on ``space`` under ``limits`` (and the ``extra`` check) with a
    cheap objective (closeness of the parameter count to 80% of the limit); check that every
    trial is a valid arch within the limits, and return the names of the params that mutations
    changed relative to their parents."""
    target = 0.8 * (limits.max_params or space.count_params(space.smallest()) * 2)

    def constraint(params: dict[str, Any]) -> str | None:
        arch = space.from_params(params)
        return space.check(arch, limits) or (extra(arch) if extra else None)

    sampler = EvolutionSampler(
        suggest_func=space.suggest, constraint=constraint, population_size=10, tournament_size=4, seed=0
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: -abs(space.count_params(space.suggest(t)) - target), n_trials=n_trials)
    changed: set[str] = set()
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        arch = space.from_params(trial.params)
        assert space.decode(space.encode(arch)) == arch
        assert constraint(trial.params) is None, space.encode(arch)
        origin, parent = lineage(trial)
        if origin == "mutation" and parent is not None:
            before = study.trials[parent].params
            changed |= {k for k in trial.params if before.get(k) != trial.params[k]}
    return changed
