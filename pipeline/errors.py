"""User-facing errors: the CLI prints ``str(error)`` as one line and exits non-zero."""

from __future__ import annotations

from diswot.proxies import ProxyError

__all__ = ["DiswotError", "ProxyError"]


class DiswotError(Exception):
    """A problem with the user's input or environment, with a message that says how to fix it."""
