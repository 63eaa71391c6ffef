"""Vanilla knowledge distillation loss (Hinton et al. 2015), as DisWOT's Eq. 1 uses it.

The paper (supplementary B.1, Eq. 1) distils with
``L = gamma * CE(z_S, y) + alpha * rho^2 * KL(softmax(z_T / rho) || softmax(z_S / rho))``.
Eq. 1 writes the soft term as a cross-entropy between the two softened distributions; it differs
from the KL divergence by the teacher's entropy, a constant with zero gradient for the student, so
the KL form (as in CRD, which the paper builds on) is used and is 0 when the student matches.
CIFAR: gamma=0.1, alpha=0.9, rho=4 (B.1); ImageNet: alpha=3, rho=1 (B.3).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["KDLoss", "KDTerms", "kd_loss"]


class KDTerms(NamedTuple):
    """The weighted total and its two unweighted parts (for logging)."""

    total: torch.Tensor
    ce: torch.Tensor
    kl: torch.Tensor


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    gamma: float = 0.1,
    alpha: float = 0.9,
    rho: float = 4.0,
) -> KDTerms:
    """Eq. 1 of the DisWOT supplementary: ``gamma*CE + alpha*rho^2*KL(p_T || p_S)``.

    The KL term is summed over classes and averaged over the batch (``batchmean``); the
    ``rho^2`` factor keeps its gradient scale independent of the temperature (Hinton et al.).
    Computed in float32 whatever the logits' dtype (AMP-safe).
    """
    if rho <= 0:
        raise ValueError(f"the KD temperature rho must be > 0, got {rho}")
    zs = student_logits.float()
    zt = teacher_logits.detach().float()
    if zs.shape != zt.shape:
        raise ValueError(f"student logits {tuple(zs.shape)} and teacher logits {tuple(zt.shape)} differ")
    ce = F.cross_entropy(zs, labels)
    log_ps = F.log_softmax(zs / rho, dim=1)
    log_pt = F.log_softmax(zt / rho, dim=1)
    kl = F.kl_div(log_ps, log_pt, reduction="batchmean", log_target=True)
    return KDTerms(gamma * ce + alpha * rho * rho * kl, ce, kl)


class KDLoss(nn.Module):
    """Module form of :func:`kd_loss` with fixed ``gamma``, ``alpha`` and ``rho``."""

    def __init__(self, *, gamma: float = 0.1, alpha: float = 0.9, rho: float = 4.0) -> None:
        super().__init__()
        for name, value in (("gamma", gamma), ("alpha", alpha)):
            if value < 0:
                raise ValueError(f"KD weight {name} must be >= 0, got {value}")
        if rho <= 0:
            raise ValueError(f"the KD temperature rho must be > 0, got {rho}")
        self.gamma, self.alpha, self.rho = float(gamma), float(alpha), float(rho)

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor) -> KDTerms:  # noqa: D102
        return kd_loss(student_logits, teacher_logits, labels, gamma=self.gamma, alpha=self.alpha, rho=self.rho)

    def extra_repr(self) -> str:  # noqa: D102
        return f"gamma={self.gamma}, alpha={self.alpha}, rho={self.rho}"
