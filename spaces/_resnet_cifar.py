"""CIFAR ResNets (He et al., CVPR 2016, Sec. 4.2), as used by CRD and the DisWOT S0 space.

A 3x3 stem conv + BN + ReLU, three stages of post-activation BasicBlocks (strides 1, 2, 2), global
average pooling and a linear classifier. The shortcut of a block that changes the resolution or the
width is a 1x1 conv + BN ("option B"); this is what reproduces the parameter counts of the DisWOT
supplementary, Table 3 (e.g. ``ResNet[7,1,3]`` = 259.89K with 100 classes) and the CRD teachers
(``resnet8x4``, ``resnet32x4``).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ._network import FeatureNetwork

__all__ = ["BasicBlock", "CifarResNet", "cifar_resnet", "cifar_resnet_params"]


def _conv_bn_params(c_in: int, c_out: int, k: int) -> int:
    """Parameters of a bias-free ``k x k`` conv followed by an affine BatchNorm."""
    return c_in * c_out * k * k + 2 * c_out


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a ReLU between, a residual shortcut and a final ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the module to ``x``."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        result: torch.Tensor = self.relu(out + self.shortcut(x))
        return result


class CifarResNet(FeatureNetwork):
    """A CIFAR ResNet: stem, ``len(depths)`` stages of BasicBlocks, global pool, ``classifier``."""

    def __init__(
        self,
        *,
        depths: Sequence[int],
        widths: Sequence[int],
        stem_width: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_width, 3, 1, 1, bias=False), nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True)
        )
        stages: list[nn.Module] = []
        c_in = stem_width
        for i, (depth, width) in enumerate(zip(depths, widths)):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(c_in if j == 0 else width, width, stride if j == 0 else 1) for j in range(depth)]
            stages.append(nn.Sequential(*blocks))
            c_in = width
        self.stages = nn.Sequential(*stages)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pre-pool feature map of ``x``."""
        out: torch.Tensor = self.stages(self.stem(x))
        return out


def _check_config(depths: Sequence[int], widths: Sequence[int], stem_width: int, num_classes: int) -> None:
    if len(depths) == 0 or len(depths) != len(widths):
        raise ValueError(
            f"depths {tuple(depths)} and widths {tuple(widths)} must be non-empty and of equal length, "
            "e.g. depths=(3, 3, 3), widths=(16, 32, 64)"
        )
    for name, values in (("depths", depths), ("widths", widths)):
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
            raise ValueError(f"{name} must be positive ints, got {tuple(values)}")
    if not isinstance(stem_width, int) or stem_width < 1:
        raise ValueError(f"stem_width must be a positive int, got {stem_width!r}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")


def cifar_resnet(
    depths: Sequence[int],
    widths: Sequence[int] = (16, 32, 64),
    stem_width: int | None = None,
    num_classes: int = 100,
) -> FeatureNetwork:
    """Build a CIFAR ResNet with ``depths[i]`` BasicBlocks of ``widths[i]`` channels per stage.

    ``stem_width`` defaults to ``widths[0]``. ResNet20/32/44/56/110 are ``depths=(n, n, n)`` with
    n = 3/5/7/9/18; CRD's resnet8x4 / resnet32x4 are ``widths=(64, 128, 256), stem_width=32`` with
    n = 1 / 5.
    """
    stem = (widths[0] if len(widths) else 0) if stem_width is None else stem_width
    _check_config(depths, widths, stem, num_classes)
    return CifarResNet(depths=tuple(depths), widths=tuple(widths), stem_width=stem, num_classes=num_classes)


def cifar_resnet_params(
    depths: Sequence[int],
    widths: Sequence[int] = (16, 32, 64),
    stem_width: int | None = None,
    num_classes: int = 100,
) -> int:
    """Parameter count of :func:`cifar_resnet` with the same arguments, computed analytically."""
    stem = widths[0] if stem_width is None else stem_width
    total = _conv_bn_params(3, stem, 3)
    c_in = stem
    for i, (depth, width) in enumerate(zip(depths, widths)):
        stride = 1 if i == 0 else 2
        for j in range(depth):
            block_in = c_in if j == 0 else width
            total += _conv_bn_params(block_in, width, 3) + _conv_bn_params(width, width, 3)
            if j == 0 and (stride != 1 or block_in != width):
                total += _conv_bn_params(block_in, width, 1)
        c_in = width
    return total + c_in * num_classes + num_classes
