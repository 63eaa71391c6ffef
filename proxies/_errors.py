"""The proxies' one error: no finite score for a candidate."""

from __future__ import annotations

__all__ = ["ProxyError"]


class ProxyError(Exception):
    """A proxy could not give a finite score for a candidate; the trial fails with this reason."""
