"""Rich tables of the best students of a study."""

from __future__ import annotations

import optuna
from rich import get_console
from rich.table import Table

__all__ = ["fmt_count", "top_trials", "top_table"]


def fmt_count(n: float | int | None) -> str:
    """``259890`` -> ``259.89K``; ``None`` -> ``-``."""
    if n is None:
        return "-"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}"
    return str(int(n))


def top_trials(study: optuna.Study, n: int = 10) -> list[optuna.trial.FrozenTrial]:
    """The ``n`` best COMPLETE trials, best first (by the first objective, the score)."""
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    reverse = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    return sorted(trials, key=lambda t: t.values[0], reverse=reverse)[:n]


def top_table(study: optuna.Study, n: int = 10, title: str | None = None, *, terms: bool | None = None) -> Table:
    """A table of the best students: rank, trial, arch, score, (terms), params, FLOPs.

    The score terms are shown when ``terms`` is True, or by default on consoles of 110+ columns.
    """
    if terms is None:
        terms = get_console().width >= 110
    trials = top_trials(study, n)
    term_cols = [k for k in ("semantic", "relation") if terms and any(k in t.user_attrs for t in trials)]
    table = Table(title=title or f"top {len(trials)} students of {study.study_name}")
    for col in ("#", "trial", "arch", "score", *term_cols, "params", "FLOPs"):
        table.add_column(col, justify="left" if col == "arch" else "right", overflow="fold", no_wrap=col != "arch")
    for i, t in enumerate(trials, 1):
        a = t.user_attrs
        table.add_row(
            str(i),
            str(t.number),
            str(a.get("arch", "?")),
            f"{t.values[0]:.5g}",
            *[f"{a[k]:.4g}" if k in a else "-" for k in term_cols],
            fmt_count(a.get("params")),
            fmt_count(a.get("flops")),
        )
    return table
