"""What the benchmarks that run the real ``diswot search`` share: its command line on synthetic
probe data, and the trials/s of what it ran."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import optuna

__all__ = ["search_argv", "trials_per_second"]


def search_argv(
    *,
    space: str,
    teacher: str,
    batch_size: int,
    study: str,
    n_trials: int,
    workers: int = 1,
    options: Sequence[str] = (),
) -> list[str]:
    """``diswot search`` (as ``python -m``) on synthetic data, without a progress bar, then ``options``."""
    return [
        sys.executable,
        "-m",
        "diswot.pipeline.cli",
        "search",
        "--space",
        space,
        "--teacher",
        teacher,
        "--dataset",
        "synthetic",
        "--batch-size",
        str(batch_size),
        "--study",
        study,
        "--n-trials",
        str(n_trials),
        "--workers",
        str(workers),
        "--no-progress",
        *options,
    ]


def trials_per_second(trials: Sequence[optuna.trial.FrozenTrial]) -> float:
    """``trials`` over the span from the first one's start to the last one's end."""
    start = min(t.datetime_start for t in trials if t.datetime_start)
    end = max(t.datetime_complete for t in trials if t.datetime_complete)
    return len(trials) / (end - start).total_seconds()
