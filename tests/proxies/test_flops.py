"""FLOPs from forward hooks equal torch's FlopCounterMode, in every space."""

from __future__ import annotations

import pytest
import torch

from diswot.proxies import FlopHooks, count_flops
from diswot.spaces import get_space

ARCHS = {
    "s0": ["ResNet[1,3,5]", "ResNet[7,1,3]"],
    "nb201": [
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
        "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
    ],
    "s2-cifar": ["C16|B3x16d1s1|K5x32d2s2|B7x24d1s2", "C8|K3x8d1s1"],
    "s2-imagenet": ["C16|B3x16d1s2|K3x32d1s2|B5x32d1s2|B3x64d1s2|H64"],
}


@pytest.mark.parametrize(("space_name", "arch"), [(s, a) for s, archs in ARCHS.items() for a in archs])
def test_hooks_match_flop_counter_mode(space_name: str, arch: str) -> None:
    space = get_space(space_name)
    size = 64 if space_name == "s2-imagenet" else 32
    torch.manual_seed(0)
    net = space.build(space.decode(arch), num_classes=10)
    with FlopHooks(net) as hooks, torch.inference_mode():
        net.forward_all(torch.randn(2, 3, size, size))
    assert hooks.per_image == count_flops(net, size) > 0


def test_hooks_count_each_module_once() -> None:
    space = get_space("s0")
    net = space.build(space.decode("ResNet[1,1,1]"), num_classes=10)
    x = torch.randn(4, 3, 32, 32)
    with FlopHooks(net) as hooks, torch.inference_mode():
        net(x)
        first = hooks.per_image
        net(x[:1])
    assert hooks.per_image == first > 0
