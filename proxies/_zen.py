"""``zen``: the Zen-score of Zen-NAS (expressivity of the pre-pool map, data-free)."""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from diswot.spaces import FeatureNetwork, NetworkOutput

from ._errors import ProxyError
from ._base import Batch, Proxy, TeacherContext, register_proxy
from ._util import fresh_copy, weight_layers

__all__ = ["ZenProxy"]

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@register_proxy
class ZenProxy(Proxy):
    """``zen``: Zen = log E||f(x) - f(x + alpha*eps)||_F + sum_i log(sigma_i).

    Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition", ICCV 2021,
    Algorithm 1: on a copy of the student whose Conv2d/Linear weights are drawn from N(0, 1)
    (biases 0; BatchNorm weight 1, bias 0), with x, eps ~ N(0, 1) of the probe batch's shape
    and alpha = 0.01, ``f`` the pre-global-pool feature map and, for the i-th BatchNorm layer
    with m channels, sigma_i = sqrt(sum_j sigma_ij^2 / m) from its mini-batch variances (train
    mode) on the unperturbed input. The expectation is the mean over the batch. A BatchNorm
    whose input is constant (a dead branch, e.g. a conv fed only by ``none`` edges) carries no
    signal to the output and is left out of the sum instead of adding log(0).

    Deviation: Algorithm 1 first removes the residual links; a generic network gives no way to
    do that, so they are kept. The random draws use the global torch RNG (seed it to repeat).
    """

    name: ClassVar[str] = "zen"
    needs_data: ClassVar[bool] = False
    citation: ClassVar[str] = "Lin et al., Zen-NAS, ICCV 2021 (Algorithm 1)"

    def __init__(self, *, alpha: float = 0.01) -> None:
        if not alpha > 0:
            raise ValueError(f"zen: alpha must be > 0 (the paper uses 0.01), got {alpha!r}")
        self.alpha = float(alpha)

    def refusal(self, student: FeatureNetwork, out: NetworkOutput) -> str | None:
        """A network without BatchNorm has no variance term: Zen-NAS is defined for BN networks."""
        if any(isinstance(m, _BN) for m in student.modules()):
            return None
        return "the Zen-score sums the log BatchNorm variances (Zen-NAS, Algorithm 1) and this network has no BatchNorm"

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """Two forward passes (clean and perturbed) of a Gaussian-initialised copy."""
        net = fresh_copy(student).train()
        device = batch.images.device
        with torch.no_grad():
            for m in weight_layers(net):
                m.weight.normal_(0.0, 1.0)
                if m.bias is not None:
                    m.bias.zero_()
            for m in net.modules():
                if isinstance(m, _BN) and m.affine:
                    m.weight.fill_(1.0)
                    m.bias.zero_()
            x = torch.randn(batch.images.shape, device=device, dtype=batch.images.dtype)
            eps = torch.randn(batch.images.shape, device=device, dtype=batch.images.dtype)

            sigmas: list[float] = []

            def hook(_m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
                a = args[0].double()
                dims = [d for d in range(a.dim()) if d != 1]
                sigmas.append(math.sqrt(float(a.var(dim=dims, unbiased=False).mean())))

            handles = [m.register_forward_pre_hook(hook) for m in net.modules() if isinstance(m, _BN)]
            try:
                clean = net.forward_features(x)
            finally:
                for h in handles:
                    h.remove()
            noisy = net.forward_features(x + self.alpha * eps)
            delta = float((clean - noisy).double().flatten(1).norm(dim=1).mean())
        if delta <= 0:
            raise ProxyError("zen: the feature map does not respond to the input, so the log of the Zen-score is -inf")
        bn_term = sum(math.log(s) for s in sigmas if s > 0)
        return {"score": math.log(delta) + bn_term, "expressivity": math.log(delta), "bn": bn_term}
