"""``zico``: the inverse coefficient of variation of the weight gradients across mini-batches."""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from diswot.spaces import FeatureNetwork

from ._base import Batch, Proxy, TeacherContext, register_proxy
from ._errors import ProxyError
from ._gradient import _grad_enabled, loss_and_weight_grads

__all__ = ["ZicoProxy", "zico_of_gradients"]

#: the probe batch is split into this many mini-batches (ZiCo's reference code uses two)
SPLITS = 2


def zico_of_gradients(grads: list[torch.Tensor]) -> float:
    """sum over layers of log(sum over weights of mean|g| / std(g)), over the mini-batch axis 0.

    ``grads`` holds one ``(splits, numel)`` tensor a layer. Weights whose gradient does not vary
    (std 0) are left out, and so is a layer with none left, as in ZiCo's reference code.
    """
    total = 0.0
    for g in grads:
        g = g.double()
        std = g.std(dim=0, unbiased=False)
        live = std > 0
        ratio = float((g.abs().mean(dim=0)[live] / std[live]).sum())
        if ratio > 0:
            total += math.log(ratio)
    return total


@register_proxy
class ZicoProxy(Proxy):
    """``zico``: S = sum_l log( sum_w E[|g_w|] / sigma(g_w) ) over Conv2d/Linear layers l.

    Li, Yang, Bhardwaj & Marculescu, "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on
    Gradients", ICLR 2023, Eq. 9: the mean absolute gradient of each weight and its standard
    deviation across mini-batches. The probe batch is split into two mini-batches, each gives the
    gradient of its mean cross-entropy (student in train mode).
    """

    name: ClassVar[str] = "zico"
    needs_labels: ClassVar[bool] = True
    needs_grad: ClassVar[bool] = True
    citation: ClassVar[str] = "Li et al., ZiCo, ICLR 2023"

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """One forward and backward per mini-batch."""
        n = batch.images.shape[0]
        if n < 2 * SPLITS:
            raise ProxyError(
                f"zico compares gradients of {SPLITS} mini-batches: give a probe batch of at least {2 * SPLITS}"
            )
        labels = batch.require_labels()
        per_split: list[list[torch.Tensor]] = []
        params = list(student.parameters())
        with _grad_enabled(params):
            for chunk, y in zip(batch.images.chunk(SPLITS), labels.chunk(SPLITS)):
                _, grads = loss_and_weight_grads(student, Batch(chunk, y, batch.num_classes))
                per_split.append([g.detach().reshape(-1) for g in grads])
        stacked = [torch.stack(layer) for layer in zip(*per_split)]
        return {"score": zico_of_gradients(stacked)}
