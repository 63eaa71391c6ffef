"""``diswot teachers``: the forms ``--teacher`` takes and the registered short names.

``--list torchvision`` or ``--list timm`` (with an optional ``--filter`` pattern) prints the model
names those libraries offer (README, "Teachers").
"""

from __future__ import annotations

import argparse
import fnmatch

from rich.markup import escape
from rich.table import Table

from ..errors import DiswotError
from ._console import console

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``teachers`` sub-command."""
    p = sub.add_parser("teachers", help="list the forms of --teacher and the short names")
    p.add_argument(
        "--list", choices=("torchvision", "timm"), help="list the model names of torchvision or timm instead"
    )
    p.add_argument("--filter", metavar="PATTERN", help="with --list: names matching this glob, e.g. 'convnext*'")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the forms and short names, or one library's model names."""
    from ..teachers import FORMS, TEACHERS  # the registry imports torch: only when the command runs

    if args.list is not None:
        names = _library_names(args.list)
        if args.filter:
            names = fnmatch.filter(names, args.filter)
        for name in names:
            console.print(f"{args.list}:{name}", highlight=False)
        return 0
    forms = Table(title="--teacher forms")
    forms.add_column("form")
    forms.add_column("what")
    for form, what in FORMS:
        forms.add_row(escape(form), escape(what))
    console.print(forms)
    short = Table(title="short names")
    short.add_column("name")
    short.add_column("input", justify="right")
    short.add_column("what")
    for name in TEACHERS.names():
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
