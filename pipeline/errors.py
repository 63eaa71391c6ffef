"""User-facing errors: the CLI prints ``str(error)`` as one line and exits non-zero.

``ProxyError`` is the proxies' own (re-exported here); it is imported on first use, so that the
command line can parse its options without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diswot.proxies import ProxyError

__all__ = ["DiswotError", "ProxyError", "ScoreChangeError"]


class DiswotError(Exception):
    """A problem with the user's input or environment, with a message that says how to fix it."""


class ScoreChangeError(DiswotError):
    """A resume asked to change a field that decides every score (``field``): refused, a new study is the way."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def __getattr__(name: str) -> Any:
    if name == "ProxyError":
        from diswot.proxies import ProxyError

        return ProxyError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
