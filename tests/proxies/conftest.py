"""Shared helpers for proxy tests: a tiny network; the CLI helpers of the pipeline tests, for the proxies
scored through a search."""

from __future__ import annotations

import torch
from torch import nn

from diswot.spaces import FeatureNetwork

from ..pipeline.conftest import SMALL_CONFIG, SMALL_S0, run_cli, sqlite_url

__all__ = ["SMALL_CONFIG", "SMALL_S0", "TinyNet", "run_cli", "sqlite_url"]


class TinyNet(FeatureNetwork):
    """conv-BN-ReLU stem and ``depth`` conv-BN-ReLU blocks of ``width`` channels, a linear classifier;
    ``pool`` halves the map once at the end (smaller features)."""

    def __init__(self, width: int = 8, depth: int = 2, num_classes: int = 5, pool: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        for _ in range(depth):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        if pool:
            layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
