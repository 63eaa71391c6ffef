"""Plain-text figures shared by the dashboard notes and the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from diswot.spaces import Limits

__all__ = ["fmt_count", "fmt_limits", "plural"]


def fmt_count(n: float | int | None) -> str:
    """``259890`` -> ``259.89K``; ``None`` -> ``-``; beyond 1000G in powers of ten (``1e+99``)."""
    if n is None:
        return "-"
    if abs(n) >= 1e12:
        return f"{n:.3g}"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}"
    return str(int(n))


def fmt_limits(limits: Limits) -> str:
    """``Limits(max_params=1000000, max_layers=20)`` -> ``at most 1.00M params and 20 layers``."""
    parts = []
    if limits.max_params is not None:
        parts.append(f"{fmt_count(limits.max_params)} params")
    if limits.max_layers is not None:
        parts.append(f"{limits.max_layers} layers")
    return f"at most {' and '.join(parts)}" if parts else "none"


def plural(n: int, noun: str) -> str:
    """``(1, "student")`` -> ``1 student``; ``(3, "student")`` -> ``3 students``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
