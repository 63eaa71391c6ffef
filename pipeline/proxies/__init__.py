"""Zero-cost proxies: baselines, KD-based proxies and the DisWOT score."""

from ._base import PROXIES, Batch, Proxy, Reference, TeacherContext, finite, get_proxy, register_proxy, set_bn_mode
from . import _diswot  # noqa: F401  (registers diswot, diswot-semantic, diswot-relation)
# baselines and KD-based proxies (each module registers its proxies on import)
from . import _counts, _ensemble, _gradient, _jacov, _kd, _nwot, _plain, _synflow, _zen  # noqa: F401,E402

__all__ = ["PROXIES", "Batch", "Proxy", "Reference", "TeacherContext", "finite", "get_proxy", "register_proxy", "set_bn_mode"]
