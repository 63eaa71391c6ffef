"""The DisWOT score (paper, Appendix C.2, Listings 1 and 2), at the cost of one student forward.

* Semantic term M_s: the Grad-CAM of the classifier, i.e. the FC-weight gradient of the mean
  cross-entropy after one backward on the probe batch. It has the closed form
  ``G = (softmax(z) - onehot(y))^T h / B`` with ``h`` the pooled features, so no backward pass
  through the network is needed. Listing 1 compares ``G`` of teacher and student through
  channel-wise similarity matrices ``g_k g_k^T`` (one per class ``k``), row-normalised, squared
  L2 difference / (C * K).
* Relation term M_r: batch-wise Gram matrices of the pre-global-pool features, row-normalised,
  squared L2 difference / B^2 (Listing 2).
* DisWOT = -(M_s + M_r), higher is better.

Unequal widths. Listing 1 needs the teacher and student to have the same number of channels
``C``. When they differ (S2 students against a ResNet teacher), ``semantic="class"`` compares the
class-by-class Gram matrices ``G G^T`` (K x K), row-normalised, squared L2 difference / K^2: the
same Grad-CAM, the same normalisation, but the similarity taken between classes instead of
channels, which is defined for any widths. ``semantic="auto"`` (the default) uses Listing 1 when
the widths are equal and raises otherwise; the search resolves "auto" once per study from the
space (:func:`resolve_semantic_mode`), so every candidate of a study uses the same formula.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F

from diswot.spaces import FeatureNetwork, NetworkOutput

from ._errors import ProxyError
from ._base import Batch, BNMode, Proxy, TeacherContext, register_proxy

__all__ = [
    "DisWOT",
    "DisWOTRelation",
    "DisWOTSemantic",
    "batch_similarity",
    "channel_similarity",
    "class_similarity",
    "fc_weight_grad",
    "flatten_samples",
    "naive_diswot",
    "resolve_semantic_mode",
    "SEMANTIC_MODES",
]

SemanticMode = Literal["auto", "channel", "class"]
#: the forms of the semantic term (``--semantic``): ``auto`` decides once per study
SEMANTIC_MODES: tuple[SemanticMode, ...] = ("auto", "channel", "class")


def fc_weight_grad(logits: torch.Tensor, pooled: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Closed-form gradient of mean cross-entropy w.r.t. the FC weight: ``(p - onehot)^T h / B``."""
    p = torch.softmax(logits.float(), dim=1)
    p[torch.arange(p.shape[0], device=p.device), labels] -= 1.0
    return p.t().mm(pooled.float()) / logits.shape[0]


def channel_similarity(g_t: torch.Tensor, g_s: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Listing 1's ``channel_similarity`` for ``(K, C)`` gradients, in O(K*C) memory and time.

    Row ``i`` of ``normalize(g_k g_k^T)`` is ``a_ki * g_k`` with ``a_ki = g_ki / max(|g_ki|*|g_k|, eps)``,
    so the squared difference of the two matrices expands into norms and one dot product per class.
    """
    if g_t.shape != g_s.shape:
        raise ProxyError(
            f"channel-wise semantic similarity needs equal widths, got teacher {tuple(g_t.shape)} and "
            f"student {tuple(g_s.shape)}; use the class-wise form (semantic='class')"
        )
    k, c = g_s.shape
    n_t = g_t.norm(dim=1, keepdim=True)
    n_s = g_s.norm(dim=1, keepdim=True)
    a_t = g_t / (g_t.abs() * n_t).clamp_min(eps)
    a_s = g_s / (g_s.abs() * n_s).clamp_min(eps)
    dot = (g_t * g_s).sum(dim=1, keepdim=True)
    per_row = a_s.square() * n_s.square() + a_t.square() * n_t.square() - 2 * a_s * a_t * dot
    similarity: torch.Tensor = per_row.sum() / (c * k)
    return similarity


def _row_normalised_gram(f: torch.Tensor) -> torch.Tensor:
    return F.normalize(f.mm(f.t()), dim=1)


def class_similarity(g_t: torch.Tensor, g_s: torch.Tensor) -> torch.Tensor:
    """Width-free semantic distance: row-normalised ``G G^T`` (K x K), squared L2 / K^2."""
    k = g_s.shape[0]
    diff = _row_normalised_gram(g_t.float()) - _row_normalised_gram(g_s.float())
    return diff.square().sum() / (k * k)


def flatten_samples(f: torch.Tensor) -> torch.Tensor:
    """``(B, ...)`` -> ``(B, D)`` in memory order, a view for NCHW and channels-last maps alike.

    A batch Gram matrix ``f f^T`` does not depend on the order of the feature dimension, so the
    channels-last map is flattened as NHWC instead of being copied into NCHW order.
    """
    if f.dim() == 4 and not f.is_contiguous() and f.is_contiguous(memory_format=torch.channels_last):
        f = f.permute(0, 2, 3, 1)
    return f.reshape(f.shape[0], -1)


def batch_similarity(gram_t: torch.Tensor, f_s: torch.Tensor) -> torch.Tensor:
    """Listing 2: ``gram_t`` is the teacher's row-normalised batch Gram; ``f_s`` the student map."""
    b = f_s.shape[0]
    diff = gram_t - _row_normalised_gram(flatten_samples(f_s).float())
    return diff.square().sum() / (b * b)


def resolve_semantic_mode(mode: SemanticMode, teacher_width: int, space_width: int | None) -> SemanticMode:
    """Resolve ``auto`` once per study: Listing 1 when every student has the teacher's width."""
    if mode != "auto":
        return mode
    return "channel" if space_width == teacher_width else "class"


class _DisWOTBase(Proxy):
    needs_teacher: ClassVar[bool] = True
    needs_data: ClassVar[bool] = True
    needs_labels: ClassVar[bool] = True
    needs_grad: ClassVar[bool] = False  # closed form: no backward pass
    bn_mode: ClassVar[BNMode] = "train"
    citation: ClassVar[str] = "Dong et al., DisWOT, CVPR 2023, supplementary C.2 (Listings 1, 2)"
    use_semantic: ClassVar[bool] = True
    use_relation: ClassVar[bool] = True
    options: ClassVar[tuple[str, ...]] = ("semantic",)

    def __init__(self, *, semantic: SemanticMode = "auto") -> None:
        if semantic not in SEMANTIC_MODES:
            raise ValueError(f"semantic must be one of {', '.join(SEMANTIC_MODES)}, got {semantic!r}")
        self.semantic = semantic

    def prepare(self, teacher: FeatureNetwork | None, batch: Batch) -> TeacherContext:
        """Run the teacher once on the probe batch; cache its FC gradient and batch Gram."""
        if teacher is None:
            raise ProxyError(f"proxy {self.name!r} needs a teacher")
        with torch.inference_mode():
            out = teacher.forward_all(batch.images)
            cache = {
                "grad": fc_weight_grad(out.logits, out.pooled, batch.require_labels()),
                "gram": _row_normalised_gram(flatten_samples(out.features).float()),
                "width": int(out.pooled.shape[1]),
            }
        return TeacherContext(teacher=None, batch=batch, cache=cache)

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """One student forward (inference mode, no autograd graph); returns score and terms."""
        with torch.inference_mode():
            return self.similarity_terms(ctx, student.forward_all(batch.images), batch)

    def similarity_terms(self, ctx: TeacherContext, out: NetworkOutput, batch: Batch) -> dict[str, float]:
        """``semantic`` (M_s), ``relation`` (M_r) and ``score`` = -(M_s + M_r) of a student's outputs."""
        with torch.no_grad():
            out = NetworkOutput(*(t.detach() for t in out))
            terms: dict[str, float] = {}
            total = torch.zeros((), device=out.logits.device)
            if self.use_semantic:
                g_s = fc_weight_grad(out.logits, out.pooled, batch.require_labels())
                g_t = ctx.cache["grad"]
                if self.semantic == "auto" and g_s.shape != g_t.shape:
                    raise ProxyError(
                        f"teacher width {g_t.shape[1]} != student width {g_s.shape[1]}: the channel-wise "
                        "semantic term (Listing 1) is undefined; use semantic='class'"
                    )
                m_s = class_similarity(g_t, g_s) if self.semantic == "class" else channel_similarity(g_t, g_s)
                terms["semantic"] = float(m_s)
                total = total + m_s
            if self.use_relation:
                m_r = batch_similarity(ctx.cache["gram"], out.features)
                terms["relation"] = float(m_r)
                total = total + m_r
        terms["score"] = -float(total)
        return terms


@register_proxy
class DisWOT(_DisWOTBase):
    """DisWOT: ``-(M_s + M_r)``, semantic plus relation similarity to the teacher."""

    name: ClassVar[str] = "diswot"


@register_proxy
class DisWOTSemantic(_DisWOTBase):
    """DisWOT's semantic term alone: ``-M_s`` (Listing 1)."""

    name: ClassVar[str] = "diswot-semantic"
    use_relation: ClassVar[bool] = False


@register_proxy
class DisWOTRelation(_DisWOTBase):
    """DisWOT's relation term alone: ``-M_r`` (Listing 2)."""

    name: ClassVar[str] = "diswot-relation"
    use_semantic: ClassVar[bool] = False


def naive_diswot(
    teacher: FeatureNetwork, student: FeatureNetwork, batch: Batch, semantic: SemanticMode = "channel"
) -> dict[str, float]:
    """The paper's two listings called as printed, once per candidate: the naive pattern.

    Listing 1 runs teacher and student forward and backward to read their FC-weight gradients;
    Listing 2 runs both forward again for the pre-pool features. The teacher is recomputed for
    every candidate and the student is back-propagated in full. Kept as the reference the fast
    path is tested and benchmarked against; never used by the search. ``semantic="class"`` swaps
    Listing 1's channel-wise form for the class-wise one (unequal widths).
    """
    m_s = _listing1_semantic(teacher, student, batch, semantic)
    m_r = _listing2_relation(teacher, student, batch)
    m_s, m_r = m_s.detach(), m_r.detach()
    return {"semantic": float(m_s), "relation": float(m_r), "score": -float(m_s + m_r)}


def _listing1_semantic(teacher: FeatureNetwork, student: FeatureNetwork, batch: Batch, semantic: str) -> torch.Tensor:
    grads = []
    for net in (teacher, student):
        net.zero_grad(set_to_none=True)
        torch.autograd.backward(F.cross_entropy(net(batch.images), batch.require_labels()))
        grads.append(net.classifier.weight.grad.detach())
    if semantic == "class":
        return class_similarity(grads[0], grads[1])
    g_t, g_s = (g.unsqueeze(-1) for g in grads)  # (K, C, 1), as Listing 1 reshapes
    k, c = g_s.shape[:2]
    emd_s = F.normalize(torch.bmm(g_s, g_s.permute(0, 2, 1)), dim=2)
    emd_t = F.normalize(torch.bmm(g_t, g_t.permute(0, 2, 1)), dim=2)
    similarity: torch.Tensor = (emd_s - emd_t).square().sum() / (c * k)
    return similarity


def _listing2_relation(teacher: FeatureNetwork, student: FeatureNetwork, batch: Batch) -> torch.Tensor:
    b = batch.images.shape[0]
    f_t = teacher.forward_features(batch.images).reshape(b, -1)
    f_s = student.forward_features(batch.images).reshape(b, -1)
    gram_s = F.normalize(torch.mm(f_s, f_s.t()))
    gram_t = F.normalize(torch.mm(f_t, f_t.t()))
    return (gram_t - gram_s).square().sum() / (b * b)
