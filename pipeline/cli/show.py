"""``diswot show``: the best trials of a study with their arch strings."""

from __future__ import annotations

import argparse
import json

from ._options import add_storage_options, add_top_option
from ..handle import Search
from ._report import print_top
from ._console import console
from ._front import add_front_options, show_front

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``show`` sub-command."""
    p = sub.add_parser("show", help="list the best students of a study")
    add_storage_options(p, study_required=True)
    add_top_option(p)
    p.add_argument(
        "--json",
        action="store_true",
        help="print JSON instead of a table: the recommended trial, the best students with their pick scores "
        "and distillation results, every pick score",
    )
    add_front_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the top trials."""
    search = Search.load(args.storage, args.study)
    status = show_front(search, args, console)
    if status is not None:
        return status
    weights = search.score_weights()
    if args.json:
        console.print_json(json.dumps({**search.pick_report(args.top), "score_weights": weights}))
    else:
        print_top(console, search.study, args.top, storage=search.storage)
        if weights:
            shares = ", ".join(f"{k} {w:.2f}" for k, w in weights.items())
            console.print(
                f"{search.config.proxy}: weights from the study's reference sample: {shares}", highlight=False
            )
    return 0
