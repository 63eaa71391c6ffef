"""The ``diswot`` command line: one module per sub-command, user errors as one clear line.

Each command module (``search``, ``score``, ...) has ``add_parser(sub)`` and ``run(args)``; what
several commands share lives in the private modules (``_console``, ``_training``, ``_front``) and in :mod:`diswot.pipeline.cli._options`. No command module imports another.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NoReturn, Sequence

from rich.markup import escape

from diswot.storage import StorageError, install_log_masking, mask_url

from ..errors import DiswotError
from ._console import console, err_console

__all__ = ["build_parser", "console", "err_console", "main", "name_flags"]

#: sub-command name -> module (relative to this package) with ``add_parser(sub)`` and ``run(args)``
COMMANDS: dict[str, str] = {
    "search": ".search",
    "score": ".score",
    "show": ".show",
    "dashboard": ".dashboard",
    "storage-server": ".storage_server",
    "train": ".train",
    "distill": ".distill",
    "export": ".export",
    "rank": ".rank",
    "teachers": ".teachers",
}

#: errors caused by the user's input or environment: one line, exit 2, no traceback (an
#: ``ArchError`` is a ``ValueError``)
USER_ERRORS: tuple[type[Exception], ...] = (DiswotError, StorageError, ValueError)
#: (module, class) of the user errors of the rooms that import torch: only an imported module can raise one
LAZY_USER_ERRORS = (("diswot.spaces", "UnknownNameError"), ("diswot.proxies", "ProxyError"))


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a user error (:data:`USER_ERRORS`), without importing a room for it."""
    lazy = tuple(getattr(sys.modules[m], name) for m, name in LAZY_USER_ERRORS if m in sys.modules)
    return isinstance(exc, USER_ERRORS + lazy)


#: the top-level help's description (the module docstring is for developers)
DESCRIPTION = "DisWOT student architecture search (CVPR 2023) on Optuna: search, score, show, distil."
#: a negative number, also with a count suffix (``-5M``): a value, not an option (argparse's own takes ``-5`` only)
_NEGATIVE_NUMBER = re.compile(r"^-(\d[\d_,]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?[a-zA-Z]?$")


class DiswotParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage dump) and that reads ``-5M`` as a value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        message = re.sub(r"^argument (-[-\w]+)[^:]*: ", r"\1 ", message)  # "--top must be >= 1, got 0"
        err_console.print(
            f"[bold red]error:[/bold red] {escape(self.prog)}: {escape(message)} (see {escape(self.prog)} --help)",
            highlight=False,
            soft_wrap=True,
        )
        raise SystemExit(2)


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    """Every ``--flag`` of ``parser`` and its sub-commands."""
    found: set[str] = set()
    for action in parser._actions:
        found.update(o for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _flags(sub)
    return found


def name_flags(message: str, flags: set[str]) -> str:
    """A library message in the command line's words: an option named as a field (```max_params```)
    becomes its flag (``--max-params``) where the command line has that flag."""

    def flag(m: re.Match[str]) -> str:
        name = "--" + m[1].replace("_", "-")
        return name if name in flags else m[0]

    return re.sub(r"`([a-z][a-z0-9_]*)`", flag, message)


def _version() -> str:
    try:
        return version("diswot")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout that is not installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    parser = DiswotParser(prog="diswot", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"diswot {_version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(module, __package__).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``diswot`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or an argument error, said in one line (2)
        return exc.code if isinstance(exc.code, int) else 2
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
    except Exception as exc:
        if not is_user_error(exc) or args.verbose >= 2:
            raise
        message = name_flags(mask_url(str(exc)).replace("\n", " "), _flags(parser))
        err_console.print(
            f"[bold red]error:[/bold red] {escape(message)}", markup=True, highlight=False, soft_wrap=True
        )
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
