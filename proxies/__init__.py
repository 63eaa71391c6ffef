"""How a student is scored: the DisWOT score, zero-cost and KD-based proxies, one registry; FLOPs counting."""

from ._base import (
    PROXIES,
    RETEST,
    Batch,
    Proxy,
    Reference,
    TeacherContext,
    check_supported,
    finite,
    get_proxy,
    list_proxies,
    make_proxy,
    register_proxy,
    set_bn_mode,
)
from ._errors import ProxyError
from ._flops import FlopHooks, arch_flops, count_flops
from ._diswot import SEMANTIC_MODES, resolve_semantic_mode  # registers diswot, diswot-semantic, diswot-relation

# baselines and KD-based proxies (each module registers its proxies on import)
from . import _counts, _depth, _ensemble, _gradient, _jacov, _kd, _meco, _nwot, _plain, _synflow, _zen, _zico  # noqa: F401

__all__ = [
    "PROXIES",
    "RETEST",
    "SEMANTIC_MODES",
    "Batch",
    "FlopHooks",
    "Proxy",
    "ProxyError",
    "Reference",
    "TeacherContext",
    "arch_flops",
    "check_supported",
    "count_flops",
    "finite",
    "get_proxy",
    "list_proxies",
    "make_proxy",
    "register_proxy",
    "resolve_semantic_mode",
    "set_bn_mode",
]
