"""Zero-cost proxies: baselines, KD-based proxies and the DisWOT score."""

from ._base import PROXIES, Batch, Proxy, TeacherContext, finite, get_proxy, register_proxy

__all__ = ["PROXIES", "Batch", "Proxy", "TeacherContext", "finite", "get_proxy", "register_proxy"]
