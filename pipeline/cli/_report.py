"""Rich tables of the best students of a study."""

from __future__ import annotations

from typing import Collection

import optuna
from rich import get_console
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from diswot.storage import record

from .._format import fmt_count
from ._hints import distill_hint
from ..pick import recommended_trial, stored_picks, top_trials

__all__ = ["print_recommended", "print_top", "top_table"]


def _distilled(trials: list[optuna.trial.FrozenTrial]) -> bool:
    return any(record.DISTILL_TOP1 in t.user_attrs for t in trials)


def top_table(
    study: optuna.Study,
    n: int = 10,
    title: str | None = None,
    *,
    terms: bool | None = None,
    arch: bool = True,
    leave_out: Collection[str] = (),
) -> Table:
    """A table of the best students: rank, trial, arch, score, (terms), params, FLOPs, (distillation).

    The score terms are shown when ``terms`` is True, or by default on consoles of 110+ columns;
    the distillation columns (``distill_top1``, ``distill_epochs``) once a listed trial is distilled.
    Arch strings are never wrapped (they are copied into other commands); ``arch=False`` leaves
    them out, for :func:`print_top` to print below the table; ``leave_out`` names columns to leave
    out on a narrow console. No column is narrower than its header.
    """
    if terms is None:
        terms = get_console().width >= 110
    trials = top_trials(study, n)
    term_cols = [k for k in ("semantic", "relation") if terms and any(k in t.user_attrs for t in trials)]
    distill_cols = ["distill top-1", "distill epochs"] if _distilled(trials) else []
    picked = stored_picks(study) if len(study.directions) == 1 else {}
    pick_cols = ["pick score"] if picked else []
    repeats = sorted({p.repeats for p in picked.values()})
    how = f", pick score = mean of {'/'.join(map(str, repeats))} repeats" if picked else ""
    which = "the one student" if len(trials) == 1 else f"top {len(trials)} distinct students"
    table = Table(title=title or f"{which} of {study.study_name}{how}")
    for col in (
        "#",
        "trial",
        *(["arch"] if arch else []),
        "score",
        *pick_cols,
        *term_cols,
        "params",
        "FLOPs",
        *distill_cols,
    ):
        if col not in leave_out:
            table.add_column(col, justify="left" if col == "arch" else "right", no_wrap=True, min_width=len(col))
    for i, t in enumerate(trials, 1):
        a = t.user_attrs
        distill = (
            [f"{100 * a[record.DISTILL_TOP1]:.2f}%", str(a.get(record.DISTILL_EPOCHS, "-"))]
            if record.DISTILL_TOP1 in a
            else ["-", "-"]
        )
        cells = {
            "#": str(i),
            "trial": str(t.number),
            "arch": str(a.get(record.ARCH, "?")),
            "score": f"{t.values[0]:.5g}",
            "pick score": f"{picked[a['arch']].score:.5g}" if a.get(record.ARCH) in picked else "-",
            **{k: f"{a[k]:.4g}" if k in a else "-" for k in term_cols},
            "params": fmt_count(a.get(record.PARAMS)),
            "FLOPs": fmt_count(a.get(record.FLOPS)),
            **dict(zip(distill_cols, distill)),
        }
        table.add_row(*(cells[c.header] for c in table.columns))  # type: ignore[index]
    return table


#: what a narrow console leaves out first, step by step (the arch strings then go below the table)
_NARROW = (
    (),
    ("semantic", "relation"),
    ("semantic", "relation", "distill epochs"),
    ("semantic", "relation", "distill epochs", "FLOPs"),
)


def print_top(console: Console, study: optuna.Study, n: int = 10, *, storage: str | None = None) -> None:
    """Print :func:`top_table`; arch strings too long for the console go below it, one unbroken line each.
    With ``storage`` (the study's URL), the ``distill`` command of the recommended student follows."""
    if not top_trials(study, 1):
        console.print(f"no completed trials in study {study.study_name}", highlight=False)
        return

    def fits(table: Table) -> bool:
        return Measurement.get(console, console.options.update_width(10**6), table).maximum <= console.width

    table = top_table(study, n)
    if fits(table):
        console.print(table)
    else:
        tables = [top_table(study, n, arch=False, leave_out=cols) for cols in _NARROW]
        console.print(next((t for t in tables if fits(t)), tables[-1]))
        for i, t in enumerate(top_trials(study, n), 1):
            console.print(
                f"{i}. trial {t.number}: {t.user_attrs.get('arch', '?')}", soft_wrap=True, highlight=False, markup=False
            )
    if len(study.directions) == 1:
        print_recommended(console, study, storage=storage)


def print_recommended(console: Console, study: optuna.Study, *, storage: str | None = None) -> None:
    """One line: the student the search recommends (:func:`~diswot.pipeline.pick.recommended_trial`);
    with ``storage``, a second: the command that distils it."""
    best = recommended_trial(study)
    if best is None:
        return
    arch = best.user_attrs.get(record.ARCH, "?")
    found = stored_picks(study).get(arch)
    how = "best score" if found is None else f"best pick score {found.score:.5g} over {found.repeats} repeats"
    console.print(f"recommended: trial {best.number} ({how}): {arch}", soft_wrap=True, highlight=False, markup=False)
    if storage is not None:
        console.print(
            f"distil it: {distill_hint(study, storage, best.number)}", soft_wrap=True, highlight=False, markup=False
        )
