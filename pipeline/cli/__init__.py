"""The ``diswot`` command line: one module per sub-command, user errors as one clear line.

Each command module (``search``, ``score``, ...) has ``add_parser(sub)`` and ``run(args)``; what
several commands share lives in the private modules (``_console``, ``_study``, ``_training``,
``_front``) and in :mod:`diswot.pipeline._options`. No command module imports another.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from rich.markup import escape

from diswot.spaces import ArchError, UnknownNameError
from diswot.storage import StorageError, install_log_masking, mask_url

from ..errors import DiswotError, ProxyError
from ._console import console, err_console

__all__ = ["build_parser", "console", "err_console", "main"]

#: sub-command name -> module (relative to this package) with ``add_parser(sub)`` and ``run(args)``
COMMANDS: dict[str, str] = {
    "search": ".search",
    "score": ".score",
    "show": ".show",
    "dashboard": ".dashboard",
    "storage-server": ".storage_server",
    "train": ".train",
    "distill": ".distill",
    "rank": ".rank",
    "teachers": ".teachers",
}

#: errors caused by the user's input or environment: one line, exit 2, no traceback
USER_ERRORS = (DiswotError, ProxyError, ArchError, UnknownNameError, StorageError, ValueError)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(prog="diswot", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(module, __package__).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``diswot`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    install_log_masking()  # no storage password in any log line, whichever logger writes it
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/yellow]")
        return 130
    except USER_ERRORS as exc:
        if args.verbose >= 2:
            raise
        message = mask_url(str(exc)).replace("\n", " ")
        err_console.print(
            f"[bold red]error:[/bold red] {escape(message)}", markup=True, highlight=False, soft_wrap=True
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
