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

from diswot.proxies import Batch, Proxy, ProxyError, TeacherContext, register_proxy
from diswot.proxies._nwot import NwotProxy, relu_code_kernel_logdet
from diswot.proxies._util import run_hooked
from diswot.proxies._gradient import FisherProxy, GradNormProxy
from diswot.proxies._kd import _KDProxyBase
from diswot.spaces import FeatureNetwork

__all__ = [
    "AZExpressivity",
    "AZTrainability",
    "FisherFew",
    "GradNormFew",
    "KDClassifierSnip",
    "NwotLast",
    "SampleWiseActivationPatterns",
]


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
        run_hooked(student, batch.images, handles)
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


def _blocks(student: nn.Module) -> list[nn.Module]:
    """The stem and the blocks of the development spaces' students, in order: S0's residual blocks,
    NAS-Bench-Macro's layers (identity layers left out: their output is their input), NAS-Bench-201's
    cells. Another network has no blocks here."""
    if hasattr(student, "stages"):
        body = [block for stage in student.stages for block in stage]
    elif hasattr(student, "layers"):
        body = [layer for layer in student.layers if not isinstance(layer, nn.Identity)]
    elif hasattr(student, "cells"):
        body = list(student.cells)
    else:
        raise ProxyError("az-nas reads the blocks of the S0, NAS-Bench-Macro and NAS-Bench-201 students only")
    return [student.stem, *body]


def isotropy_entropy(feature: torch.Tensor) -> float:
    """Entropy of the normalised eigenvalues of the channel covariance of a (B, C, H, W) map, every
    position of every image a sample (AZ-NAS's expressivity of one block)."""
    rows = feature.detach().double().permute(0, 2, 3, 1).reshape(-1, feature.shape[1])
    rows = rows - rows.mean(dim=0, keepdim=True)
    eig = torch.linalg.eigvalsh(rows.t() @ rows / rows.shape[0]).clamp(min=0.0)
    if float(eig.sum()) <= 0:
        return 0.0
    p = eig / eig.sum()
    return float(-(p * torch.log(p + 1e-8)).sum())


@register_proxy
class AZExpressivity(Proxy):
    """``az-nas``: AZ-NAS's expressivity and progressivity (Lee & Ham, CVPR 2024, Sec. 3.2).

    For the output of the stem and of every block, the entropy of the normalised eigenvalues of its
    channel covariance (every position of every probe image a sample): how isotropically the block
    spreads the images over its channels. ``score`` (expressivity) is their sum over the blocks,
    ``progressivity`` the smallest increase from one block to the next. One forward pass, no
    autograd graph; AZ-NAS's trainability (a backward pass through every block) is left out.
    """

    name: ClassVar[str] = "az-nas"
    citation: ClassVar[str] = "Lee & Ham, AZ-NAS: Assembling Zero-Cost Proxies, CVPR 2024"

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """One forward pass with a hook on the stem and every block."""
        maps: list[torch.Tensor] = []
        handles = [m.register_forward_hook(lambda _m, _a, out: maps.append(out)) for m in _blocks(student)]
        run_hooked(student, batch.images, handles)
        values = [isotropy_entropy(f) for f in maps]
        steps = [b - a for a, b in zip(values, values[1:])]
        return {"score": sum(values), "progressivity": min(steps) if steps else 0.0, "blocks": float(len(values))}


def block_jacobian_score(f_in: torch.Tensor, f_out: torch.Tensor, generator: torch.Generator) -> float:
    """AZ-NAS's trainability of one block: -s - 1/s + 2, s the largest singular value of the
    channel-by-channel product of a random +-1 output gradient with the input gradient it gives
    (the input gradient pixel-unshuffled to the output's resolution where the block downsamples);
    s = 0 where the block's output does not depend on its input."""
    g_out = torch.randint(0, 2, f_out.shape, generator=generator, dtype=f_out.dtype).mul_(2).sub_(1)
    if not (f_in.requires_grad and f_out.requires_grad):  # a cell whose output does not read its input
        return -1.0 / 1e-6 + 2.0
    (g_in,) = torch.autograd.grad(f_out, f_in, grad_outputs=g_out, allow_unused=True)
    if g_in is None:
        return -1.0 / 1e-6 + 2.0
    if g_in.shape[-1] != g_out.shape[-1]:
        g_in = F.pixel_unshuffle(g_in, g_in.shape[-1] // g_out.shape[-1])
    rows_out = g_out.permute(0, 2, 3, 1).reshape(-1, g_out.shape[1]).double()
    rows_in = g_in.permute(0, 2, 3, 1).reshape(-1, g_in.shape[1]).double()
    s = float(torch.linalg.svdvals(rows_in.t() @ rows_out / rows_out.shape[0]).max())
    return -s - 1.0 / (s + 1e-6) + 2.0


@register_proxy
class AZTrainability(Proxy):
    """``az-trainability``: AZ-NAS's trainability (Lee & Ham, CVPR 2024, Sec. 3.2): the mean over
    consecutive blocks (the stem, then every block, as ``az-nas`` reads them) of how far the block's
    Jacobian, probed with a random +-1 output gradient, is from a spectral norm of 1. One forward
    pass with autograd and one backward pass through each block."""

    name: ClassVar[str] = "az-trainability"
    needs_grad: ClassVar[bool] = True
    citation: ClassVar[str] = "Lee & Ham, AZ-NAS: Assembling Zero-Cost Proxies, CVPR 2024"

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """One forward pass keeping each block's output, then the blocks' Jacobian probes, last first."""
        maps: list[torch.Tensor] = []
        handles = [m.register_forward_hook(lambda _m, _a, out: maps.append(out)) for m in _blocks(student)]
        images = batch.images.clone().requires_grad_(True)  # so that the stem's output has a graph
        run_hooked(student, images, handles, grad=True)
        generator = torch.Generator().manual_seed(0)
        scores = [block_jacobian_score(maps[i - 1], maps[i], generator) for i in reversed(range(1, len(maps)))]
        return {"score": sum(scores) / len(scores), "blocks": float(len(scores))}
