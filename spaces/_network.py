"""The network contract shared by every student and teacher (ARCHITECTURE.md, "Network").

``forward_all(x)`` returns :class:`NetworkOutput` ``(features, pooled, logits)``, what the DisWOT
terms read:

* ``features``: the body's output before the global pool, which the relation term M_r flattens per
  sample (``proxies/_diswot.py``). A convolutional network gives its ``(B, C, H, W)`` map (or the
  same map channels-last); a transformer gives its tokens after the final norm, ``(B, N, C)``
  (class token included) or ``(B, H, W, C)``.
* ``pooled``: the ``(B, C)`` vector the classifier reads (the semantic term M_s). By default the
  spatial mean of a ``(B, C, H, W)`` map (:meth:`FeatureNetwork.pool`); a network whose pooled
  vector is something else, e.g. the class token of a ViT, overrides :meth:`FeatureNetwork.pool`
  (or :meth:`FeatureNetwork.forward_all`).
* ``logits``: ``classifier(pooled)``.

FLOPs are counted from hooks on the Conv2d and Linear modules (``proxies/_flops.py``). A module
that multiplies activations with each other (attention's ``Q K^T`` and ``A V``) declares a
``matmul_flops(x) -> int`` method giving those FLOPs for its input ``x``; the hooks add them.
"""

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

    Subclasses implement :meth:`forward_features` (the ``(B, C, H, W)`` map before the global
    pool, or a transformer's ``(B, N, C)`` tokens) and set ``self.classifier`` to the final
    :class:`torch.nn.Linear`; a transformer also overrides :meth:`pool` (module docstring).
    """

    classifier: nn.Linear

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Return the feature map before global average pooling (or the tokens after the final norm)."""
        raise NotImplementedError

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """Global average pooling of a ``(B, C, H, W)`` map to ``(B, C)``; other shapes pass through.

        Override it where the classifier reads something else (a ViT's class token)."""
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
