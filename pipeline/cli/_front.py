"""``diswot show --pareto`` and ``--budget``: the options and what they print."""

from __future__ import annotations

import argparse
import json

import optuna
from rich.console import Console

from rich.table import Table

from diswot.storage import record

from ..handle import Search

from .._format import fmt_count

__all__ = ["add_front_options", "show_front"]


def add_front_options(p: argparse.ArgumentParser) -> None:
    """Register ``--pareto`` and ``--budget`` on ``diswot show``."""
    p.add_argument("--pareto", action="store_true", help="print the Pareto front: arch, score, params, FLOPs, latency")
    p.add_argument(
        "--budget",
        metavar="KEY=VALUE",
        help="the best student within a budget, from the front, e.g. params=1M or flops=300M,latency=5 (ms)",
    )


def show_front(search: Search, args: argparse.Namespace, console: Console) -> int | None:
    """Print the front or the best student within ``--budget`` and return the exit status
    (1: no student fits the budget); ``None`` when neither was asked for."""
    from ..pareto import front_rows, objectives_of

    if args.pareto:
        front = search.pareto_front()  # a single-objective study has none: one line
    if args.budget:
        return _show_budget(search, args, console)
    if not args.pareto:
        return None
    if args.json:
        console.print_json(json.dumps(front_rows(front)))
    else:
        objectives = ", ".join(objectives_of(search.study))
        console.print(front_table(front, f"Pareto front of {search.study_name} ({objectives}): {len(front)} students"))
    return 0


def _show_budget(search: Search, args: argparse.Namespace, console: Console) -> int:
    from ..pareto import front_rows, parse_budget

    budget = parse_budget(args.budget)
    trial, source = search.budget_best(budget)
    wanted = ", ".join(f"{k} <= {v:g} ms" if k == "latency" else f"{k} <= {fmt_count(v)}" for k, v in budget.items())
    if args.json:
        console.print_json(
            json.dumps({"budget": budget, "source": source, "best": front_rows([trial]) if trial else []})
        )
    elif trial is None:
        console.print(
            f"no student of study {search.study_name} within {wanted} (searched {source}); raise the budget",
            highlight=False,
        )
    else:
        console.print(front_table([trial], f"best student within {wanted}, from {source}"))
        from ._hints import distill_hint

        hint = distill_hint(search.study, search.storage, trial.number)
        console.print(f"distil it: {hint}", highlight=False, soft_wrap=True, markup=False)
    return 0 if trial is not None else 1


def front_table(trials: list[optuna.trial.FrozenTrial], title: str) -> Table:
    """The front as a table of arch, score, params, FLOPs and latency (ms per batch)."""
    from ..pareto import front_rows

    table = Table(title=title)
    for col in ("trial", "arch", "score", "params", "FLOPs", "latency ms"):
        table.add_column(col, justify="left" if col == "arch" else "right", overflow="fold", no_wrap=col != "arch")
    for row in front_rows(trials):
        latency = row[record.LATENCY]
        table.add_row(
            str(row["trial"]),
            str(row["arch"]),
            f"{row['score']:.5g}",
            fmt_count(row["params"]),
            fmt_count(row["flops"]),
            "-" if latency is None else f"{latency:.3g}",
        )
    return table
