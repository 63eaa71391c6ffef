"""User-facing errors: the CLI prints ``str(error)`` as one line and exits non-zero."""

from __future__ import annotations

__all__ = ["DiswotError", "ProxyError"]


class DiswotError(Exception):
    """A problem with the user's input or environment, with a message that says how to fix it."""


class ProxyError(DiswotError):
    """A proxy could not give a finite score for a candidate; the trial fails with this reason."""
