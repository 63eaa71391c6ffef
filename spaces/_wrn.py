"""Wide residual networks for CIFAR (Zagoruyko & Komodakis, BMVC 2016), e.g. the WRN-40-2 teacher.

A 3x3 stem conv (16 channels), three groups of ``(depth - 4) / 6`` pre-activation wide basic blocks
(BN-ReLU-conv3x3-BN-ReLU-conv3x3) with ``16k / 32k / 64k`` channels and strides 1 / 2 / 2, a final
BN + ReLU, global average pooling and a linear classifier. A block that changes the width takes its
shortcut as a 1x1 conv of the pre-activated input, as in the reference implementation.
"""

from __future__ import annotations

import torch
from torch import nn

from ._network import FeatureNetwork

__all__ = ["WideResNet", "wide_resnet"]


class WideBasicBlock(nn.Module):
    """Pre-activation wide basic block (no dropout)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.relu = nn.ReLU(inplace=False)
        self.shortcut: nn.Module | None = None
        if c_in != c_out or stride != 1:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the module to ``x``."""
        act = self.relu(self.bn1(x))
        out: torch.Tensor = self.conv2(self.relu(self.bn2(self.conv1(act))))
        return out + (x if self.shortcut is None else self.shortcut(act))


class WideResNet(FeatureNetwork):
    """WRN-``depth``-``widen_factor``; ``forward_features`` ends with the final BN + ReLU."""

    def __init__(self, *, depth: int, widen_factor: int, num_classes: int) -> None:
        super().__init__()
        n = (depth - 4) // 6
        widths = (16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        groups: list[nn.Module] = []
        c_in = 16
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            blocks = [WideBasicBlock(c_in if j == 0 else width, width, stride if j == 0 else 1) for j in range(n)]
            groups.append(nn.Sequential(*blocks))
            c_in = width
        self.groups = nn.Sequential(*groups)
        self.bn = nn.BatchNorm2d(c_in)
        self.relu = nn.ReLU(inplace=True)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pre-pool feature map of ``x``."""
        out: torch.Tensor = self.relu(self.bn(self.groups(self.stem(x))))
        return out


def wide_resnet(depth: int = 40, widen_factor: int = 2, num_classes: int = 100) -> FeatureNetwork:
    """Build WRN-``depth``-``widen_factor`` for 32x32 inputs; ``depth`` must be 6n + 4 (n >= 1)."""
    if not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
        raise ValueError(f"WRN depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...), got {depth!r}")
    if not isinstance(widen_factor, int) or widen_factor < 1:
        raise ValueError(f"widen_factor must be a positive int, got {widen_factor!r}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return WideResNet(depth=depth, widen_factor=widen_factor, num_classes=num_classes)
