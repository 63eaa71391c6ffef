"""``diswot score``: every score term for one architecture."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from .._format import fmt_count
from ..config import DEFAULT_REFERENCE_SIZE
from ._options import add_scoring_options, config_from_args
from ._progress import steps
from ._console import console, err_console

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``score`` sub-command."""
    p = sub.add_parser("score", help="score one architecture and print every term")
    add_scoring_options(p)
    p.add_argument("--arch", required=True, help="the space's arch string, e.g. 'ResNet[7,1,3]'")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Score ``--arch`` and print the result."""
    from diswot.proxies import arch_flops

    from ..assembly import attach_reference, make_scoring

    config = config_from_args(args)
    from diswot.spaces import get_space

    arch = get_space(config.space).decode(args.arch)  # fail fast on a malformed string
    setup = make_scoring(config)
    if setup.scorer.proxy.reference_terms:  # the score is a rank: it needs the sample to rank against
        size = config.reference_size or DEFAULT_REFERENCE_SIZE
        err_console.print(
            f"{config.proxy} ranks each term against a reference sample of {size} architectures, "
            "scored here first (a search stores it in its study; --proxy diswot scores without one)",
            highlight=False,
        )
        with steps(err_console, f"{config.proxy}: reference sample", size) as advance:
            attach_reference(setup, on_arch=advance)
    space = setup.space
    result = setup.scorer.score(arch)
    out = {
        "space": space.name,
        "arch": space.encode(arch),
        "teacher": config.teacher,
        "proxy": config.proxy,
        "score": result.score,
        "terms": {k: v for k, v in result.terms.items() if k != "score"},
        "params": space.count_params(arch, setup.num_classes),
        "layers": space.count_layers(arch),
        "flops": result.flops
        if result.flops is not None
        else arch_flops(space, arch, setup.num_classes, setup.image_size),
        "within_limits": space.check(arch, setup.limits, setup.num_classes) is None,
        "seconds": result.seconds,
    }
    if args.json:
        console.print_json(json.dumps(out))
        return 0
    table = Table(title=f"{out['arch']} vs {config.teacher} ({config.proxy})")
    table.add_column("term")
    table.add_column("value", justify="right")
    table.add_row("score", f"{result.score:.8g}")
    for k, v in out["terms"].items():
        table.add_row(k, f"{v:.8g}")
    table.add_row("params", fmt_count(out["params"]))
    table.add_row("layers", str(out["layers"]))
    table.add_row("FLOPs", fmt_count(out["flops"]))
    table.add_row("scoring time", f"{result.seconds * 1000:.1f} ms")
    console.print(table)
    return 0
