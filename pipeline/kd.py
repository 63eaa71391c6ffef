"""Vanilla knowledge distillation loss (Hinton et al. 2015), as DisWOT's Eq. 1 uses it.

The paper (supplementary B.1, Eq. 1) distils with
``L = gamma * CE(z_S, y) + alpha * rho^2 * KL(softmax(z_T / rho) || softmax(z_S / rho))``.
Eq. 1 writes the soft term as a cross-entropy between the two softened distributions; it differs
from the KL divergence by the teacher's entropy, a constant with zero gradient for the student, so
the KL form (as in CRD, which the paper builds on) is used and is 0 when the student matches.
CIFAR: gamma=0.1, alpha=0.9, rho=4 (B.1); ImageNet: alpha=3, rho=1 (B.3).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

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


class TeacherInput(nn.Module):
    """The teacher on its own input: the student's batch renormalised and resized for it.

    The images of a distillation run are normalised for the student (``student_mean``/``std``) at
    its size; the teacher reads ``(x * std_s + mean_s - mean_t) / std_t`` resized (bilinear) to
    ``image_size``, as the search's teacher side does (README, "Teachers"). ``mean``/``std``
    None keeps the student's normalisation.
    """

    def __init__(
        self,
        *,
        teacher: nn.Module,
        image_size: int,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        student_mean: Sequence[float] = (0.0, 0.0, 0.0),
        student_std: Sequence[float] = (1.0, 1.0, 1.0),
    ) -> None:
        super().__init__()
        self.teacher = teacher
        self.image_size = int(image_size)
        ms, ss = torch.tensor(student_mean), torch.tensor(student_std)
        mt = ms if mean is None else torch.tensor(mean)
        st = ss if std is None else torch.tensor(std)
        self.register_buffer("scale", (ss / st).reshape(1, -1, 1, 1))
        self.register_buffer("shift", ((ms - mt) / st).reshape(1, -1, 1, 1))
        self.renormalise = not (torch.equal(ms, mt) and torch.equal(ss, st))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 - the teacher's logits
        if self.renormalise:
            x = x * self.get_buffer("scale") + self.get_buffer("shift")
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False, antialias=True
            )
        logits: torch.Tensor = self.teacher(x)
        return logits


__all__ += ["TeacherInput"]
