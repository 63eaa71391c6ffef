"""FLOPs of one forward pass per image, with :class:`torch.utils.flop_counter.FlopCounterMode`."""

from __future__ import annotations

import functools
from typing import Hashable

import torch
from torch.utils.flop_counter import FlopCounterMode

from diswot.spaces import Space

__all__ = ["count_flops"]


@functools.lru_cache(maxsize=4096)
def count_flops(space: Space, arch: Hashable, num_classes: int, image_size: int) -> int:
    """FLOPs (multiply-adds count 2, as torch's counter does) of one image through ``arch``.

    The network is built on the ``meta`` device, so nothing is allocated or computed; only the
    operator shapes are traced. Cached per architecture.
    """
    with torch.device("meta"):
        net = space.build(arch, num_classes=num_classes).eval()
        x = torch.empty(1, 3, image_size, image_size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(x)
    return int(counter.get_total_flops())
