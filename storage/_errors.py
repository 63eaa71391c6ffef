"""Storage errors with one-line, actionable messages."""

from __future__ import annotations

__all__ = ["ConfigMismatchError", "StorageError"]


class StorageError(RuntimeError):
    """A storage URL that is malformed, unreachable, or needs a missing driver."""


class ConfigMismatchError(StorageError):
    """Resuming a study under a configuration different from the one it was created with."""
