"""``diswot teachers [PATTERN]``: the forms ``--teacher`` takes and the registered short names.

``PATTERN`` (a glob, case-insensitive) keeps the short names that match it; ``--list torchvision``
or ``--list timm`` prints the model names those libraries offer instead, filtered by the same
pattern (README, "Teachers").
"""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.table import Table

from diswot.registry import match_names

from ..errors import DiswotError
from ._console import console

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``teachers`` sub-command."""
    p = sub.add_parser("teachers", help="list the forms of --teacher and the short names")
    p.add_argument(
        "pattern", nargs="?", metavar="PATTERN", help="only the names matching this glob, e.g. 'resnet*' (any case)"
    )
    p.add_argument(
        "--list", choices=("torchvision", "timm"), help="list the model names of torchvision or timm instead"
    )
    p.add_argument("--filter", metavar="PATTERN", help="the same as PATTERN, e.g. --list timm --filter 'convnext*'")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the forms and short names, or one library's model names; a pattern that matches none is an error."""
    from ..teachers import FORMS, TEACHERS, list_teachers  # the registry imports torch: only when the command runs

    if args.pattern is not None and args.filter is not None:
        raise DiswotError(f"give one pattern: {args.pattern!r} or --filter {args.filter!r}")
    pattern: str | None = args.pattern if args.pattern is not None else args.filter
    if args.list is not None:
        names = match_names(_library_names(args.list), pattern)
        if not names:
            raise DiswotError(f"no {args.list} model name matches {pattern!r}")
        for name in names:
            console.print(f"{args.list}:{name}", highlight=False)
        return 0
    short_names = list_teachers(pattern)
    if not short_names:
        raise DiswotError(f"no short teacher name matches {pattern!r}; the short names: {', '.join(TEACHERS.names())}")
    if pattern is None:
        forms = Table(title="--teacher forms")
        forms.add_column("form")
        forms.add_column("what")
        for form, what in FORMS:
            forms.add_row(escape(form), escape(what))
        console.print(forms)
    short = Table(title="short names" if pattern is None else escape(f"short names matching {pattern!r}"))
    short.add_column("name")
    short.add_column("input", justify="right")
    short.add_column("what")
    for name in short_names:
        spec = TEACHERS.get(name)
        short.add_row(name, f"{spec.image_size} px", spec.description)
    console.print(short)
    return 0


def _library_names(library: str) -> list[str]:
    if library == "torchvision":
        import torchvision

        names: list[str] = torchvision.models.list_models(module=torchvision.models)
        return names
    try:
        import timm
    except ImportError:
        raise DiswotError("timm teachers need timm: pip install 'diswot[timm]' (timm>=1.0)") from None
    timm_names: list[str] = timm.list_models()
    return timm_names
