"""Zero-cost proxies: baselines, KD-based proxies and the DisWOT score."""

from ._base import PROXIES, Batch, Proxy, TeacherContext, finite, get_proxy, register_proxy
from . import _diswot  # noqa: F401  (registers diswot, diswot-semantic, diswot-relation)

__all__ = ["PROXIES", "Batch", "Proxy", "TeacherContext", "finite", "get_proxy", "register_proxy"]
