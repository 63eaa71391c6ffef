"""``diswot export``: a searched student as a self-contained ``torch.export`` program and its state dict.

Parse -> :meth:`Search.load(...).export <diswot.pipeline.handle.Search.export>` -> print. The
program (``DIR/student.pt2``) loads with ``torch.export.load`` without diswot, for any batch size.
"""

from __future__ import annotations

import argparse

from ._options import Bounded, add_storage_options
from ..handle import Search
from ._console import console

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``export`` sub-command."""
    p = sub.add_parser(
        "export",
        help="write a trial's student as a torch.export program (any batch size) and its state dict",
        description="Export the recommended (or a chosen) trial's student, with its distilled weights once "
        "distilled: DIR/student.pt2 (torch.export.load, no diswot needed), DIR/state_dict.pt, DIR/export.json. "
        "The program is checked to give the module's logits on a probe batch.",
    )
    add_storage_options(p, study_required=True)
    p.add_argument("--trial", type=Bounded(at_least=0), metavar="N", help="trial number (default: the recommended one)")
    p.add_argument("--out", required=True, metavar="DIR", help="a new (or empty) folder for the export")
    p.add_argument(
        "--random-init",
        dest="distilled",
        action="store_false",
        help="export the student as the search scored it, even when it was distilled",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Export the student and say where it went."""
    done = Search.load(args.storage, args.study).export(args.out, trial=args.trial, distilled=args.distilled)
    console.print(
        f"exported {done.program} (input [batch, {', '.join(map(str, done.input_shape))}], logits within "
        f"{done.max_abs_diff:.2g} of the module's) and {done.state_dict}; load it with torch.export.load",
        highlight=False,
    )
    return 0
