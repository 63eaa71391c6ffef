"""Student search spaces (S0, NAS-Bench-201, S2) and the network contract.

``suggest(trial) -> Arch``, ``build(Arch) -> FeatureNetwork``, encode/decode, limits.
"""

from ._base import ArchError, Limits, Space, parse_count
from ._network import FeatureNetwork, NetworkOutput, WrappedNetwork
from ._registry import Registry, UnknownNameError

__all__ = [
    "ArchError",
    "FeatureNetwork",
    "Limits",
    "NetworkOutput",
    "Registry",
    "SPACES",
    "Space",
    "UnknownNameError",
    "WrappedNetwork",
    "get_space",
    "parse_count",
]

SPACES: Registry[type[Space]] = Registry("space")


def get_space(name: str, **options: object) -> Space:
    """Instantiate the space registered as ``name`` (raises UnknownNameError listing valid names)."""
    return SPACES.get(name)(**options)

# Space modules register themselves on import (added by the space implementations below).
