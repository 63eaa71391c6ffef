"""The consoles every command writes to: results on stdout, errors on stderr."""

from __future__ import annotations

from rich.console import Console

__all__ = ["console", "err_console"]

console = Console(stderr=False)
err_console = Console(stderr=True)
