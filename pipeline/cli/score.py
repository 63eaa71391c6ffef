"""``diswot score``: every score term for one architecture."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from .._format import fmt_count
from ..config import DEFAULT_REFERENCE_SIZE, SearchConfig
from ._options import add_progress_option, add_scoring_options, config_from_args
from ._progress import steps
from ._console import console, err_console

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``score`` sub-command."""
    p = sub.add_parser("score", help="score one architecture and print every term")
    add_scoring_options(p)
    p.add_argument("--arch", required=True, help="the space's arch string, e.g. 'ResNet[7,1,3]'")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_progress_option(p)
    p.set_defaults(run=run)


def _on_reference(config: SearchConfig, reused: bool) -> None:
    size = config.reference_size or DEFAULT_REFERENCE_SIZE
    how = "read from the cache" if reused else "scored here first"
    err_console.print(
        f"{config.proxy} ranks each term against a reference sample of {size} architectures, "
        f"{how} (a search stores it in its study; --proxy diswot scores without one)",
        highlight=False,
    )


def run(args: argparse.Namespace) -> int:
    """Score ``--arch`` and print the result."""
    from ..evaluation import score

    config = config_from_args(args)
    result = score(
        config,
        args.arch,
        progress=lambda label, total: steps(err_console, label, total, bar=not args.no_progress),
        on_reference=_on_reference,
    )
    out = result.to_json()
    if args.json:
        console.print_json(json.dumps(out))
        return 0
    table = Table(title=f"{out['arch']} vs {config.teacher} ({config.proxy})")
    table.add_column("term")
    table.add_column("value", justify="right")
    table.add_row("score", f"{result.score:.8g}")
    for k, v in out["terms"].items():
        table.add_row(k, f"{v:.8g}")
    for k, w in out["weights"].items():
        table.add_row(f"weight of {k}", f"{w:.3f}")
    table.add_row("params", fmt_count(out["params"]))
    table.add_row("layers", str(out["layers"]))
    table.add_row("FLOPs", fmt_count(out["flops"]))
    table.add_row("scoring time", f"{result.seconds * 1000:.1f} ms")
    console.print(table)
    return 0
