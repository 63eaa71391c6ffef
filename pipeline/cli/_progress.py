"""The command line's progress of the steps that take more than a few seconds (the reference sample,
the pick, ranking): a rich bar on a terminal, and in a log (stdout not a terminal) a line every
``every`` seconds.

``steps(console, label, total)`` is a context manager whose value is the ``advance()`` to call
after each unit of work.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..progress import LOG_EVERY_SECONDS, step_lines

__all__ = ["steps"]


@contextlib.contextmanager
def steps(
    console: Console,
    label: str,
    total: int,
    *,
    every: float = LOG_EVERY_SECONDS,
    enabled: bool = True,
    bar: bool = True,
) -> Iterator[Callable[[], None]]:
    """Show ``label: done/total`` while the body calls ``advance()`` once per unit of work
    (``bar=False``: lines even on a terminal, as ``--no-progress`` asks)."""
    if not enabled or total < 1:
        yield lambda: None
        return
    if console.is_terminal and bar:
        columns = (TextColumn(f"[bold blue]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task(label, total=total)
            yield lambda: progress.advance(task)
        return
    with step_lines(lambda line: console.print(line, highlight=False), label, total, every=every) as advance:
        yield advance
