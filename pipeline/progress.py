"""Progress of the steps that take more than a few seconds (the reference sample, the pick, ranking).

A step reports through a :data:`StepProgress`: ``progress(label, total)`` is a context manager whose
value is the ``advance()`` to call after each unit of work. :func:`text_steps` writes plain lines
(the start, one every ``every`` seconds, the end) to a stream; the command line draws a bar instead.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Callable, Iterator, TextIO

__all__ = ["LOG_EVERY_SECONDS", "StepProgress", "step_lines", "text_steps"]

#: seconds between two progress lines in a log
LOG_EVERY_SECONDS = 30.0

#: ``(label, total) -> context manager giving advance()``: what the search's stages report through
StepProgress = Callable[[str, int], contextlib.AbstractContextManager[Callable[[], None]]]


@contextlib.contextmanager
def step_lines(
    write: Callable[[str], None], label: str, total: int, *, every: float = LOG_EVERY_SECONDS
) -> Iterator[Callable[[], None]]:
    """``label: done/total`` through ``write`` (one line each): at the start, every ``every`` seconds
    while the body calls ``advance()`` once per unit of work, and at the end."""
    if total < 1:
        yield lambda: None
        return
    start = last = time.monotonic()
    done = 0
    write(f"{label}: 0/{total}")

    def advance() -> None:
        nonlocal done, last
        done += 1
        now = time.monotonic()
        if now - last >= every and done < total:
            last = now
            write(f"{label}: {done}/{total} ({now - start:.0f} s)")

    yield advance
    write(f"{label}: {done}/{total} done in {time.monotonic() - start:.0f} s")


def text_steps(stream: TextIO | None = None, *, every: float = LOG_EVERY_SECONDS) -> StepProgress:
    """A :data:`StepProgress` that writes :func:`step_lines` to ``stream`` (default stderr)."""

    def steps(label: str, total: int) -> contextlib.AbstractContextManager[Callable[[], None]]:
        out = stream or sys.stderr

        def write(line: str) -> None:
            out.write(line + "\n")
            out.flush()

        return step_lines(write, label, total, every=every)

    return steps
