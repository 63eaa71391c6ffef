"""The network contract shared by every student and teacher (ARCHITECTURE.md, "Network")."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

__all__ = ["FeatureNetwork", "NetworkOutput"]


class NetworkOutput(NamedTuple):
    """Everything one forward pass gives: the pre-pool map, the pooled vector and the logits."""

    features: torch.Tensor
    pooled: torch.Tensor
    logits: torch.Tensor


class FeatureNetwork(nn.Module):
    """A classifier split into a body (``forward_features``), global pooling and ``classifier``.

    Subclasses implement :meth:`forward_features` (returning the ``(B, C, H, W)`` map before the
    global pool) and set ``self.classifier`` to the final :class:`torch.nn.Linear`.
    """

    classifier: nn.Linear

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the feature map before global average pooling."""
        raise NotImplementedError

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """Global average pooling to ``(B, C)``."""
        return features.mean(dim=(2, 3)) if features.dim() == 4 else features

    def forward_all(self, x: torch.Tensor) -> NetworkOutput:
        """One pass returning features, pooled features and logits."""
        features = self.forward_features(x)
        pooled = self.pool(features)
        return NetworkOutput(features, pooled, self.classifier(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 - logits
        return self.forward_all(x).logits


class WrappedNetwork(FeatureNetwork):
    """Adapt any ``body`` module (image -> feature map) and a linear ``classifier``."""

    def __init__(self, *, body: nn.Module, classifier: nn.Linear) -> None:
        super().__init__()
        if not isinstance(classifier, nn.Linear):
            raise TypeError(f"classifier must be nn.Linear, got {type(classifier).__name__}")
        self.body = body
        self.classifier = classifier

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out = self.body(x)
        if isinstance(out, dict):  # torchvision feature extractors return a dict
            (out,) = out.values()
        features: torch.Tensor = out
        return features


__all__ += ["WrappedNetwork"]
