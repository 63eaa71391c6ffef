"""``plain`` (sum of theta * gradient) and ``l2_norm`` (sum of weight norms) baselines."""

from __future__ import annotations

from typing import ClassVar

import torch

from diswot.spaces import FeatureNetwork

from ._base import Batch, Proxy, TeacherContext, register_proxy
from ._gradient import _grad_enabled, loss_and_weight_grads
from ._util import weight_layers

__all__ = ["L2NormProxy", "PlainProxy"]


@register_proxy
class PlainProxy(Proxy):
    """``plain``: S = sum over Conv2d/Linear weights of theta * dL/dtheta (no absolute value).

    The "plain" saliency of Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021
    (after Mozer & Smolensky, 1989). Kept with the paper's sign: it correlates *negatively* with
    accuracy on NAS-Bench-201 (published rho about -0.26), which is a finding, not a bug.
    """

    name: ClassVar[str] = "plain"
    needs_labels: ClassVar[bool] = True
    needs_grad: ClassVar[bool] = True
    citation: ClassVar[str] = "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021"

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """One forward and backward on the probe batch."""
        params = list(student.parameters())
        with _grad_enabled(params):
            weights, grads = loss_and_weight_grads(student, batch)
            score = sum((w.detach() * g).sum() for w, g in zip(weights, grads))
        return {"score": float(score)}


@register_proxy
class L2NormProxy(Proxy):
    """``l2_norm``: S = sum over Conv2d/Linear layers of ||W_l||_2 at initialisation (data-free).

    The l2-norm baseline of NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022 Datasets and
    Benchmarks). It depends on the initialisation scheme: compare networks initialised alike.
    """

    name: ClassVar[str] = "l2_norm"
    needs_data: ClassVar[bool] = False
    citation: ClassVar[str] = "Krishnakumar et al., NAS-Bench-Suite-Zero, NeurIPS 2022 D&B"

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """No forward pass."""
        with torch.no_grad():
            score = sum(float(m.weight.detach().double().norm()) for m in weight_layers(student))
        return {"score": score}
