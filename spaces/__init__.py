"""Student search spaces (S0, NAS-Bench-201, S2, NAS-Bench-Macro, AutoFormer-Ti, PiT-Ti) and the network contract.

``suggest(trial) -> Arch``, ``build(Arch) -> FeatureNetwork``, encode/decode, limits.
"""

from typing import Any

from ._autoformer import AutoFormerArch, AutoFormerNetwork, AutoFormerSpace
from ._base import ArchError, Limits, Space, parse_count
from ._network import FeatureNetwork, NetworkOutput, WrappedNetwork
from ._macro import MacroArch, MacroNetwork, MacroSpace
from ._pit import PiTArch, PiTNetwork, PiTSpace
from ._nb201 import NB201Arch, NB201Network, NB201Space, naslib_to_nb201, nb201_to_naslib
from ._registry import Registry, UnknownNameError
from ._resnet_cifar import CifarResNet, cifar_resnet, cifar_resnet_params
from ._s0 import ResNetArch, S0Space
from ._s2 import PAPER_ARCHS, PaperArch, S2Arch, S2CifarSpace, S2ImageNetSpace, S2Network, S2Stage, bottleneck_mid_width
from ._wrn import WideResNet, wide_resnet

__all__ = [
    "PAPER_ARCHS",
    "SPACES",
    "ArchError",
    "AutoFormerArch",
    "AutoFormerNetwork",
    "AutoFormerSpace",
    "CifarResNet",
    "FeatureNetwork",
    "Limits",
    "MacroArch",
    "MacroNetwork",
    "MacroSpace",
    "NB201Arch",
    "NB201Network",
    "NB201Space",
    "NetworkOutput",
    "PaperArch",
    "PiTArch",
    "PiTNetwork",
    "PiTSpace",
    "Registry",
    "ResNetArch",
    "S0Space",
    "S2Arch",
    "S2CifarSpace",
    "S2ImageNetSpace",
    "S2Network",
    "S2Stage",
    "Space",
    "UnknownNameError",
    "WideResNet",
    "WrappedNetwork",
    "bottleneck_mid_width",
    "cifar_resnet",
    "cifar_resnet_params",
    "get_space",
    "naslib_to_nb201",
    "nb201_to_naslib",
    "parse_count",
    "wide_resnet",
]

SPACES: Registry[type[Space[Any]]] = Registry("space")


def get_space(name: str, **options: Any) -> Space[Any]:
    """Instantiate the space registered as ``name`` (raises UnknownNameError listing valid names)."""
    return SPACES.get(name)(**options)


SPACES.register("s0", S0Space)
SPACES.register("nb201", NB201Space)
SPACES.register("s2-cifar", S2CifarSpace)
SPACES.register("s2-imagenet", S2ImageNetSpace)
SPACES.register("macro", MacroSpace)
SPACES.register("autoformer-ti", AutoFormerSpace)
SPACES.register("pit-ti", PiTSpace)
