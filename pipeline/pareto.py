"""Reading a study's Pareto front, and the best student within a budget."""

from __future__ import annotations

from typing import Any

import optuna

from diswot.spaces import parse_count
from diswot.storage import record

from .config import StudyRecord
from .errors import DiswotError

__all__ = ["budget_best", "front_rows", "objectives_of", "pareto_front", "parse_budget"]

#: budget keys and the trial user attribute each one limits
BUDGET_ATTRS = {"params": record.PARAMS, "flops": record.FLOPS, "latency": record.LATENCY, "layers": record.LAYERS}


def objectives_of(study: optuna.Study) -> list[str]:
    """The study's objective names (``score`` alone for a single-objective study)."""
    recorded = StudyRecord.read(study.user_attrs.get(record.CONFIG))
    if recorded is not None and recorded.config.objectives != ("score",):  # recorded only when not the score alone
        return list(recorded.config.objectives)
    return list(study.metric_names or ["score"])


def pareto_front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The non-dominated COMPLETE trials (Optuna's ``best_trials``), best score first, each
    architecture once (its first trial). A single-objective study's front is its best trial.
    """
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        return []
    maximise = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    front, seen = [], set()
    for trial in sorted(study.best_trials, key=lambda t: (-t.values[0] if maximise else t.values[0], t.number)):
        arch = trial.user_attrs.get(record.ARCH) or repr(sorted(trial.params.items()))
        if arch not in seen:
            seen.add(arch)
            front.append(trial)
    return front


def parse_budget(text: str) -> dict[str, float]:
    """``"params=1M,flops=300M"`` -> ``{"params": 1e6, "flops": 3e8}``; latency in ms (``latency=5``)."""
    budget: dict[str, float] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in BUDGET_ATTRS:
            raise DiswotError(
                f"`budget` {text!r}: write KEY=VALUE[,KEY=VALUE], KEY one of {', '.join(BUDGET_ATTRS)}, "
                "e.g. params=1M or flops=300M,latency=5"
            )
        try:
            budget[key] = float(value) if key == "latency" else float(parse_count(value.strip()))
        except ValueError as exc:
            raise DiswotError(f"`budget` {key}={value}: {exc}") from None
    return budget


def budget_best(study: optuna.Study, budget: dict[str, float]) -> tuple[optuna.trial.FrozenTrial | None, str]:
    """The best-scoring student within ``budget`` and where it was taken from.

    From the Pareto front when every budget key is an objective of the study (the best student of
    any such budget is on the front); otherwise from all COMPLETE trials.
    """
    objectives = objectives_of(study)
    if all(key in objectives for key in budget):
        pool, source = pareto_front(study), "the Pareto front"
    else:
        pool = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        source = "all complete trials (the budget is not only on the study's objectives)"

    def fits(trial: optuna.trial.FrozenTrial) -> bool:
        attrs = trial.user_attrs
        return all(BUDGET_ATTRS[k] in attrs and attrs[BUDGET_ATTRS[k]] <= v for k, v in budget.items())

    maximise = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    inside = sorted((t for t in pool if fits(t)), key=lambda t: (-t.values[0] if maximise else t.values[0], t.number))
    return (inside[0] if inside else None), source


def front_rows(trials: list[optuna.trial.FrozenTrial]) -> list[dict[str, Any]]:
    """JSON rows of the front: trial, arch, score, params, flops, latency_ms."""
    return [
        {
            "trial": t.number,
            "arch": t.user_attrs.get(record.ARCH),
            "score": t.values[0],
            "params": t.user_attrs.get(record.PARAMS),
            "flops": t.user_attrs.get(record.FLOPS),
            record.LATENCY: t.user_attrs.get(record.LATENCY),
        }
        for t in trials
    ]
