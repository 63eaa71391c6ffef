"""Candidate signals tried by the three-benchmark protocol and not kept in the library.

Registered only when ``bench_cross_ranking.py`` imports this module, so the record of what was
tried can be rerun (BENCHMARKS.md says what decided) without the library carrying them.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from diswot.proxies import Batch, TeacherContext, register_proxy
from diswot.proxies._nwot import NwotProxy, relu_code_kernel_logdet
from diswot.proxies._gradient import FisherProxy, GradNormProxy
from diswot.proxies._kd import _KDProxyBase
from diswot.spaces import FeatureNetwork

__all__ = ["FisherFew", "GradNormFew", "KDClassifierSnip", "NwotLast", "SampleWiseActivationPatterns"]


@register_proxy
class KDClassifierSnip(_KDProxyBase):
    """``kd-fc-snip``: ``kd-snip`` on the classifier alone, in closed form from one forward pass.

    sum |W_fc * dL/dW_fc| with L Hinton's soft-target loss at rho = 4: dL/dz = rho (p_S - p_T) / B
    for the student's logits z, and dL/dW_fc = (dL/dz)^T pooled, as DisWOT's M_s reads the
    classifier's gradient (Listing 1). No backward pass. The score is ln(1 + S).
    """

    name: ClassVar[str] = "kd-fc-snip"
    citation: ClassVar[str] = "Lee et al., SNIP, ICLR 2019; Hinton et al. 2015; Dong et al., DisWOT, CVPR 2023"
    temperature: ClassVar[float] = 4.0

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """One student forward, no autograd graph."""
        teacher = self._teacher(ctx, batch)
        rho = self.temperature
        with torch.no_grad():
            out = student.forward_all(batch.images)
            p_s = F.softmax(out.logits.double() / rho, dim=1)
            p_t = F.softmax(teacher["logits"].double() / rho, dim=1)
            grad_w = (rho * (p_s - p_t) / out.logits.shape[0]).t() @ out.pooled.double()
            s = float((student.classifier.weight.double() * grad_w).abs().sum())
        return {"score": math.log1p(s), "saliency": s}


@register_proxy
class NwotLast(NwotProxy):
    """``nwot-last``: NASWOT's kernel on the binary codes of the final feature map alone.

    Mellor et al., ICML 2021, Eq. 2, with c_i the codes (> 0) of the body's output before the global
    pool instead of every ReLU: how well the network's last representation separates the probe
    images, whatever came before (NASWOT over every ReLU counts the early, high-resolution layers
    most). One forward pass, no autograd graph.
    """

    name: ClassVar[str] = "nwot-last"
    citation: ClassVar[str] = "Mellor et al., Neural Architecture Search without Training, ICML 2021"

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """One student forward."""
        with torch.no_grad():
            features = student.forward_all(batch.images).features
        n = features.shape[0]
        codes = (features.reshape(n, -1) > 0).to(torch.float64)
        kernel = codes @ codes.t() + (1.0 - codes) @ (1.0 - codes).t()
        return {"score": relu_code_kernel_logdet(kernel), "units": float(codes.shape[1])}


@register_proxy
class SampleWiseActivationPatterns(NwotProxy):
    """``swap``: the number of distinct sample-wise activation patterns (Peng et al., SWAP-NAS, ICLR 2024).

    Every ReLU unit's pattern is the binary vector of the probe images that switch it on; the score
    is ln of the number of distinct patterns over all units (the paper's SWAP without its size
    regulariser, whose Gaussian prior on the parameter count is set per space). The batch is packed
    64 images a word, so the patterns are counted with one ``unique`` of integers.
    """

    name: ClassVar[str] = "swap"
    citation: ClassVar[str] = "Peng et al., SWAP-NAS: Sample-Wise Activation Patterns, ICLR 2024"

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """One student forward with a pre-hook on every ReLU."""
        n = batch.images.shape[0]
        weights = torch.ones(n, dtype=torch.int64, device=batch.images.device)
        weights[: min(n, 63)] = 2 ** torch.arange(min(n, 63), device=batch.images.device)
        words: list[torch.Tensor] = []

        def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            codes = (args[0].detach().reshape(n, -1) > 0).to(torch.int64)
            words.append(
                torch.stack(
                    [(codes[i : i + 63] * weights[: len(codes[i : i + 63]), None]).sum(0) for i in range(0, n, 63)],
                    dim=1,
                )
            )

        handles = [m.register_forward_pre_hook(hook) for m in student.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
        with torch.no_grad():
            try:
                student(batch.images)
            finally:
                for h in handles:
                    h.remove()
        units = torch.cat(words)
        distinct = int(torch.unique(units, dim=0).shape[0]) if units.shape[1] > 1 else int(torch.unique(units).numel())
        return {"score": math.log(distinct), "units": float(units.shape[0])}


def _first(batch: Batch, k: int) -> Batch:
    """The first ``k`` images of the probe batch (and their labels)."""
    labels = batch.labels[:k] if batch.labels is not None else None
    return Batch(batch.images[:k], labels, batch.num_classes)


@register_proxy
class GradNormFew(GradNormProxy):
    """``grad_norm-8``: ``grad_norm`` on the first 8 probe images: its forward and backward at an
    eighth of the probe batch, to see whether the gradient scores survive a cheaper pass."""

    name: ClassVar[str] = "grad_norm-8"

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """``grad_norm`` on the first 8 images."""
        return super().evaluate(ctx, student, _first(batch, 8))


@register_proxy
class FisherFew(FisherProxy):
    """``fisher-8``: ``fisher`` on the first 8 probe images (see ``grad_norm-8``)."""

    name: ClassVar[str] = "fisher-8"

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """``fisher`` on the first 8 images."""
        return super().evaluate(ctx, student, _first(batch, 8))
