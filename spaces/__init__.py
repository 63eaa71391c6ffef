"""Student search spaces (S0, NAS-Bench-201, S2, NAS-Bench-Macro, AutoFormer-Ti, PiT-Ti) and the network contract.

``suggest(trial) -> Arch``, ``build(Arch) -> FeatureNetwork``, encode/decode, limits.
"""

from diswot.registry import Registry, UnknownNameError  # re-exported: the class lives in diswot.registry

from ._base import SPACES, ArchError, Limits, Space, get_space, list_spaces, parse_count, register_space
from ._network import FeatureNetwork, NetworkOutput, WrappedNetwork

# each space module registers its space classes on import; the import order is the listing order
from ._s0 import ResNetArch, S0Space
from ._nb201 import NB201Arch, NB201Network, NB201Space, naslib_to_nb201, nb201_to_naslib
from ._s2 import PAPER_ARCHS, PaperArch, S2Arch, S2CifarSpace, S2ImageNetSpace, S2Network, S2Stage, bottleneck_mid_width
from ._macro import MacroArch, MacroNetwork, MacroSpace
from ._autoformer import AutoFormerArch, AutoFormerNetwork, AutoFormerSpace
from ._pit import PiTArch, PiTNetwork, PiTSpace
from ._resnet_cifar import CifarResNet, cifar_resnet, cifar_resnet_params
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
    "list_spaces",
    "naslib_to_nb201",
    "nb201_to_naslib",
    "parse_count",
    "register_space",
    "wide_resnet",
]
