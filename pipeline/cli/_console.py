"""The consoles every command writes to: results on stdout, errors on stderr.

Lines are never broken at the terminal's width (``soft_wrap``): a path, a storage URL or a
suggested command stays on one line, so it can be copied from a log or a pipe; tables still fit
the width.
"""

from __future__ import annotations

from rich.console import Console

__all__ = ["console", "err_console"]

console = Console(stderr=False, soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
