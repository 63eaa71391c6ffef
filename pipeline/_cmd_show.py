"""``diswot show``: the best trials of a study with their arch strings."""

from __future__ import annotations

import argparse
import json

import optuna

from diswot.storage import mask_url, open_storage

from ._options import add_storage_options
from ._front import add_front_options, show_front
from .errors import DiswotError
from .report import print_top, top_trials

__all__ = ["add_parser", "load_existing_study", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``show`` sub-command."""
    p = sub.add_parser("show", help="list the best students of a study")
    add_storage_options(p, study_required=True)
    p.add_argument("--top", type=int, default=10, help="how many (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_front_options(p)
    p.set_defaults(run=run)


def load_existing_study(storage_url: str, study_name: str) -> optuna.Study:
    """Load a study, or raise a one-line error listing the studies that do exist; creates no storage."""
    storage = open_storage(storage_url, must_exist=True)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if study_name not in names:
        listed = ", ".join(names) if names else "none"
        raise DiswotError(f"no study {study_name!r} in {mask_url(storage_url)}; studies there: {listed}")
    return optuna.load_study(study_name=study_name, storage=storage)


def run(args: argparse.Namespace) -> int:
    """Print the top trials."""
    from .cli import console

    study = load_existing_study(args.storage, args.study)
    status = show_front(study, args, console)
    if status is not None:
        return status
    if args.json:
        rows = [
            {"trial": t.number, "value": t.values[0], **{k: v for k, v in t.user_attrs.items()}}
            for t in top_trials(study, args.top)
        ]
        console.print_json(json.dumps(rows))
    else:
        print_top(console, study, args.top)
    return 0
