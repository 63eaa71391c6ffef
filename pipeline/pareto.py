"""Reading a study's Pareto front: the front as a table, and the best student within a budget."""

from __future__ import annotations

from typing import Any

import optuna
from rich.table import Table

from diswot.spaces import parse_count
from diswot.storage import CONFIG_ATTR

from .errors import DiswotError
from .objectives import ATTRS
from .report import fmt_count

__all__ = ["budget_best", "front_rows", "front_table", "pareto_front", "parse_budget"]

#: budget keys and the trial user attribute each one limits
BUDGET_ATTRS = {"params": "params", "flops": "flops", "latency": "latency_ms", "layers": "layers"}


def objectives_of(study: optuna.Study) -> list[str]:
    """The study's objective names (``score`` alone for a single-objective study)."""
    config = study.user_attrs.get(CONFIG_ATTR) or {}
    return list(config.get("objectives") or study.metric_names or ["score"])


def pareto_front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The non-dominated COMPLETE trials (Optuna's ``best_trials``), best score first, each
    architecture once (its first trial). A single-objective study's front is its best trial.
    """
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        return []
    maximise = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    front, seen = [], set()
    for trial in sorted(study.best_trials, key=lambda t: (-t.values[0] if maximise else t.values[0], t.number)):
        arch = trial.user_attrs.get("arch") or repr(sorted(trial.params.items()))
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
                f"--budget {text!r}: write KEY=VALUE[,KEY=VALUE], KEY one of {', '.join(BUDGET_ATTRS)}, "
                "e.g. params=1M or flops=300M,latency=5"
            )
        try:
            budget[key] = float(value) if key == "latency" else float(parse_count(value.strip()))
        except ValueError as exc:
            raise DiswotError(f"--budget {key}={value}: {exc}") from None
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
            "arch": t.user_attrs.get("arch"),
            "score": t.values[0],
            "params": t.user_attrs.get("params"),
            "flops": t.user_attrs.get("flops"),
            ATTRS["latency"]: t.user_attrs.get(ATTRS["latency"]),
        }
        for t in trials
    ]


def front_table(trials: list[optuna.trial.FrozenTrial], title: str) -> Table:
    """The front as a table of arch, score, params, FLOPs and latency (ms per batch)."""
    table = Table(title=title)
    for col in ("trial", "arch", "score", "params", "FLOPs", "latency ms"):
        table.add_column(col, justify="left" if col == "arch" else "right", overflow="fold", no_wrap=col != "arch")
    for row in front_rows(trials):
        latency = row[ATTRS["latency"]]
        table.add_row(
            str(row["trial"]),
            str(row["arch"]),
            f"{row['score']:.5g}",
            fmt_count(row["params"]),
            fmt_count(row["flops"]),
            "-" if latency is None else f"{latency:.3g}",
        )
    return table
