"""KD-based zero-cost proxies (DisWOT supplementary A.6): a distillation loss at initialisation.

The teacher and the student see the same probe batch; the teacher's side is computed once per
study and repeat in :meth:`prepare` (no gradients, its BatchNorm statistics left untouched) and
cached. Each score is the negated distillation loss, so higher is better and a student that
reproduces the teacher scores the maximum, 0.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F

from diswot.spaces import FeatureNetwork, NetworkOutput

from ._errors import ProxyError
from ._base import Batch, Proxy, TeacherContext, register_proxy
from ._util import preserved_state, require_teacher

__all__ = [
    "CCProxy",
    "KDProxy",
    "KDSnipProxy",
    "NSTProxy",
    "SPProxy",
    "correlation_congruence",
    "hinton_kd",
    "nst_mmd",
    "similarity_preserving",
]


def hinton_kd(t_logits: torch.Tensor, s_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """rho^2 * KL(softmax(z_T/rho) || softmax(z_S/rho)), averaged over the batch (Hinton 2015)."""
    if t_logits.shape != s_logits.shape:
        raise ProxyError(
            f"kd: teacher logits {tuple(t_logits.shape)} and student logits {tuple(s_logits.shape)} differ; "
            "teacher and student need the same number of classes"
        )
    log_p_t = F.log_softmax(t_logits.double() / temperature, dim=1)
    log_p_s = F.log_softmax(s_logits.double() / temperature, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1).mean()
    return kl * temperature**2


def _taylor_rbf(e: torch.Tensor, gamma: float, order: int) -> torch.Tensor:
    """sum_{p<=P} exp(-2 gamma) (2 gamma)^p / p! (e_i . e_j)^p for L2-normalised rows ``e``."""
    dots = e @ e.t()
    out = torch.zeros_like(dots)
    for p in range(order + 1):
        out = out + math.exp(-2 * gamma) * (2 * gamma) ** p / math.factorial(p) * dots**p
    return out


def correlation_congruence(
    t_embed: torch.Tensor, s_embed: torch.Tensor, *, gamma: float = 0.4, order: int = 2
) -> torch.Tensor:
    """CC loss: ||psi(F_T) - psi(F_S)||^2 / n^2 with psi the batch correlation matrix.

    Peng et al., "Correlation Congruence for Knowledge Distillation", ICCV 2019, Eqs. 5-7 and the
    P-order Taylor expansion of the Gaussian RBF kernel on L2-normalised embeddings.
    """
    n = s_embed.shape[0]
    k_t = _taylor_rbf(F.normalize(t_embed.double().reshape(n, -1), dim=1), gamma, order)
    k_s = _taylor_rbf(F.normalize(s_embed.double().reshape(n, -1), dim=1), gamma, order)
    return (k_t - k_s).square().sum() / (n * n)


def _match_spatial(f: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(f.shape[2:]) == size:
        return f
    if f.shape[2] >= size[0] and f.shape[3] >= size[1]:
        return F.adaptive_avg_pool2d(f, size)
    return F.interpolate(f, size=size, mode="bilinear", align_corners=False)


def nst_mmd(t_feat: torch.Tensor, s_feat: torch.Tensor, *, degree: int = 2, c: float = 0.0) -> torch.Tensor:
    """NST loss: squared MMD between the teacher's and student's normalised neuron maps.

    Huang & Wang, "Like What You Like: Knowledge Distill via Neuron Selectivity Transfer", 2017,
    Eqs. 4 and 7 with the polynomial kernel k(x, y) = (x^T y + c)^d (paper: d = 2, c = 0). For
    each image, every channel's HxW map is one sample, L2-normalised; the loss is averaged over
    the batch. When the maps' sizes differ the student's is resized to the teacher's (average
    pooling when larger, bilinear when smaller).
    """
    if t_feat.dim() != 4 or s_feat.dim() != 4:
        raise ProxyError("nst needs (B, C, H, W) feature maps from teacher and student")
    s_feat = _match_spatial(s_feat, (int(t_feat.shape[2]), int(t_feat.shape[3])))
    b = t_feat.shape[0]
    ft = F.normalize(t_feat.double().reshape(b, t_feat.shape[1], -1), dim=2)
    fs = F.normalize(s_feat.double().reshape(b, s_feat.shape[1], -1), dim=2)

    def mean_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (torch.bmm(x, y.transpose(1, 2)) + c).pow(degree).mean(dim=(1, 2))

    mmd = mean_kernel(ft, ft) + mean_kernel(fs, fs) - 2 * mean_kernel(ft, fs)
    return mmd.mean()


def _row_normalised_gram(f: torch.Tensor) -> torch.Tensor:
    q = f.double().reshape(f.shape[0], -1)
    return F.normalize(q @ q.t(), dim=1)


def similarity_preserving(t_feat: torch.Tensor, s_feat: torch.Tensor) -> torch.Tensor:
    """SP loss: ||G~_T - G~_S||_F^2 / b^2 with G~ the row-normalised batch Gram of the features.

    Tung & Mori, "Similarity-Preserving Knowledge Distillation", ICCV 2019, Eqs. 1-4.
    """
    b = s_feat.shape[0]
    return (_row_normalised_gram(t_feat) - _row_normalised_gram(s_feat)).square().sum() / (b * b)


class _KDProxyBase(Proxy):
    """Teacher forward once (prepare), student forward per candidate, negated loss."""

    needs_teacher: ClassVar[bool] = True
    needs_data: ClassVar[bool] = True

    def prepare(self, teacher: FeatureNetwork | None, batch: Batch) -> TeacherContext:
        """Run the teacher once on the probe batch (in its current mode) and cache its outputs."""
        teacher = require_teacher(self.name, teacher)
        with preserved_state(teacher), torch.no_grad():
            out = teacher.forward_all(batch.images)
        cache = {"features": out.features.detach(), "pooled": out.pooled.detach(), "logits": out.logits.detach()}
        return TeacherContext(teacher=teacher, batch=batch, cache=cache)

    def _teacher(self, ctx: TeacherContext, batch: Batch) -> dict[str, torch.Tensor]:
        if not {"features", "pooled", "logits"} <= set(ctx.cache):
            ctx = self.prepare(ctx.teacher, batch)
        return ctx.cache

    def loss(self, teacher: dict[str, torch.Tensor], student: NetworkOutput) -> torch.Tensor:
        """The distillation loss between the cached teacher outputs and the student's."""
        raise NotImplementedError

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """One student forward, no autograd graph; ``score`` = -loss."""
        teacher = self._teacher(ctx, batch)
        with torch.no_grad():
            out = student.forward_all(batch.images)
            loss = float(self.loss(teacher, out))
        return {"score": -loss, "loss": loss}


@register_proxy
class KDProxy(_KDProxyBase):
    """``kd``: score = -rho^2 KL(softmax(z_T/rho) || softmax(z_S/rho)) on the probe batch.

    Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", 2015; the soft-target
    term of the DisWOT supplementary's Eq. 1 with rho = 4 (B.1).
    """

    name: ClassVar[str] = "kd"
    citation: ClassVar[str] = "Hinton et al., arXiv:1503.02531 (2015); DisWOT supplementary A.6, Eq. 1"

    def __init__(self, *, temperature: float = 4.0) -> None:
        if not temperature > 0:
            raise ValueError(f"{self.name}: temperature must be > 0 (the paper uses 4), got {temperature!r}")
        self.temperature = float(temperature)

    def loss(self, teacher: dict[str, torch.Tensor], student: NetworkOutput) -> torch.Tensor:
        """Hinton's soft-target KL at temperature rho."""
        return hinton_kd(teacher["logits"], student.logits, self.temperature)


@register_proxy
class CCProxy(_KDProxyBase):
    """``cc``: score = -CC loss between the pooled embeddings (Peng et al., ICCV 2019).

    Correlation matrices of the batch from a 2nd-order Taylor expansion of the Gaussian RBF
    kernel (gamma = 0.4 by default) on L2-normalised embeddings; widths may differ.
    """

    name: ClassVar[str] = "cc"
    citation: ClassVar[str] = "Peng et al., Correlation Congruence for Knowledge Distillation, ICCV 2019"

    def __init__(self, *, gamma: float = 0.4, order: int = 2) -> None:
        if not gamma > 0:
            raise ValueError(f"cc: gamma must be > 0, got {gamma!r}")
        if not isinstance(order, int) or order < 1:
            raise ValueError(f"cc: order must be an int >= 1 (the paper uses 2), got {order!r}")
        self.gamma = float(gamma)
        self.order = order

    def loss(self, teacher: dict[str, torch.Tensor], student: NetworkOutput) -> torch.Tensor:
        """CC loss on the pooled features."""
        return correlation_congruence(teacher["pooled"], student.pooled, gamma=self.gamma, order=self.order)


@register_proxy
class NSTProxy(_KDProxyBase):
    """``nst``: score = -MMD^2 (polynomial kernel, d = 2, c = 0) of the pre-pool neuron maps.

    Huang & Wang, "Like What You Like: Knowledge Distill via Neuron Selectivity Transfer",
    arXiv:1707.01219 (2017). Widths may differ; spatial sizes are matched to the teacher's.
    """

    name: ClassVar[str] = "nst"
    citation: ClassVar[str] = "Huang & Wang, Neuron Selectivity Transfer, arXiv:1707.01219 (2017)"

    def __init__(self, *, degree: int = 2, c: float = 0.0) -> None:
        if not isinstance(degree, int) or degree < 1:
            raise ValueError(f"nst: degree must be an int >= 1 (the paper uses 2), got {degree!r}")
        self.degree = degree
        self.c = float(c)

    def refusal(self, student: FeatureNetwork, out: NetworkOutput) -> str | None:
        """Students whose features are tokens, not ``(B, C, H, W)`` maps, have no channel maps."""
        if out.features.dim() == 4:
            return None
        return (
            f"nst compares (B, C, H, W) channel maps and these students give features of shape "
            f"{tuple(out.features.shape)} (transformer tokens)"
        )

    def loss(self, teacher: dict[str, torch.Tensor], student: NetworkOutput) -> torch.Tensor:
        """Squared MMD of the normalised channel maps."""
        return nst_mmd(teacher["features"], student.features, degree=self.degree, c=self.c)


@register_proxy
class SPProxy(_KDProxyBase):
    """``sp``: score = -SP loss of the pre-pool feature maps (Tung & Mori, ICCV 2019).

    Batch-by-batch similarity (row-normalised Gram matrices), so widths and sizes may differ.
    This is the relation term DisWOT builds on (its Listing 2 uses the same pre-pool map).
    """

    name: ClassVar[str] = "sp"
    citation: ClassVar[str] = "Tung & Mori, Similarity-Preserving Knowledge Distillation, ICCV 2019"

    def loss(self, teacher: dict[str, torch.Tensor], student: NetworkOutput) -> torch.Tensor:
        """SP loss on the pre-pool features."""
        return similarity_preserving(teacher["features"], student.features)


@register_proxy
class KDSnipProxy(KDProxy):
    """``kd-snip``: SNIP's connection sensitivity with the distillation loss, S = sum |W * dL_KD/dW|.

    Where ``kd`` reads how far the student starts from the teacher, this reads how strongly the
    teacher's soft targets pull on the student's weights at initialisation: Lee et al.'s saliency
    (SNIP, ICLR 2019, Eq. 6; ``snip`` uses the labels' cross-entropy) of Hinton's soft-target loss
    at rho = 4 (DisWOT supplementary, Eq. 1), summed over the Conv2d/Linear weights. The score is
    ``ln(1 + S)``.
    """

    name: ClassVar[str] = "kd-snip"
    needs_grad: ClassVar[bool] = True
    citation: ClassVar[str] = "Lee et al., SNIP, ICLR 2019; Hinton et al., arXiv:1503.02531 (2015)"

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """One student forward and backward against the cached teacher logits (``kd``'s temperature)."""
        from ._gradient import connection_sensitivity

        teacher = self._teacher(ctx, batch)
        s = connection_sensitivity(
            student, lambda logits: hinton_kd(teacher["logits"], logits, self.temperature), batch.images
        )
        return {"score": math.log1p(s), "saliency": s}
