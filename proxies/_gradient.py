"""Gradient-based pruning-at-initialisation proxies: ``grad_norm``, ``snip``, ``grasp``, ``fisher``.

All four follow Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS" (ICLR 2021): one
mini-batch, the mean cross-entropy of the student in train mode (BatchNorm with batch
statistics), per-weight saliencies of every Conv2d and Linear layer summed into one number.
Gradients are taken with :func:`torch.autograd.grad`, so nothing is left in ``.grad``.
"""

from __future__ import annotations

import contextlib
from typing import Callable, ClassVar, Iterator

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from diswot.spaces import FeatureNetwork

from ._errors import ProxyError
from ._base import Batch, Proxy, TeacherContext, register_proxy
from ._util import capture_outputs, cross_entropy, weight_layers

__all__ = ["FisherProxy", "GradNormProxy", "GraspProxy", "SnipProxy", "connection_sensitivity", "loss_and_weight_grads"]

_ZERO_COST_CITATION = "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021"


@contextlib.contextmanager
def _grad_enabled(params: list[torch.Tensor]) -> Iterator[None]:
    """Make ``params`` require grad for the duration (restoring each flag), with grad mode on."""
    flags = [p.requires_grad for p in params]
    try:
        with torch.enable_grad():
            for p in params:
                p.requires_grad_(True)
            yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def _weights(student: nn.Module) -> list[torch.Tensor]:
    weights = [m.weight for m in weight_layers(student)]
    if not weights:
        raise ProxyError("the network has no Conv2d or Linear layer to score")
    return weights


def loss_and_weight_grads(
    student: FeatureNetwork, batch: Batch, *, create_graph: bool = False
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Weights of every Conv2d/Linear layer and d(mean CE)/d(weight) (zeros for unused layers).

    Call inside a grad-enabled context where the weights require grad.
    """
    weights = _weights(student)
    loss = cross_entropy(student(batch.images), batch.labels)
    grads = torch.autograd.grad(loss, weights, allow_unused=True, create_graph=create_graph)
    return weights, [torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads)]


@register_proxy
class GradNormProxy(Proxy):
    """``grad_norm``: sum over layers of the Euclidean norm of the loss gradient of the weights.

    S = sum_l ||dL/dW_l||_2 for every Conv2d/Linear weight W_l (Abdelfattah et al., ICLR 2021, §3).
    """

    name: ClassVar[str] = "grad_norm"
    needs_labels: ClassVar[bool] = True
    needs_grad: ClassVar[bool] = True
    citation: ClassVar[str] = _ZERO_COST_CITATION

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """One forward and backward on the probe batch."""
        params = list(student.parameters())
        with _grad_enabled(params):
            _, grads = loss_and_weight_grads(student, batch)
            score = sum(g.norm() for g in grads)
        return {"score": float(score)}


def connection_sensitivity(
    student: FeatureNetwork, loss_of: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor
) -> float:
    """sum over the Conv2d/Linear weights of |W * dL/dW|, L = ``loss_of(student(images))``; the
    ``requires_grad`` flags are restored and no ``.grad`` is left."""
    params = list(student.parameters())
    with _grad_enabled(params):
        weights = _weights(student)
        grads = torch.autograd.grad(loss_of(student(images)), weights, allow_unused=True)
        return float(sum((w.detach() * g).abs().sum() for w, g in zip(weights, grads) if g is not None))


@register_proxy
class SnipProxy(Proxy):
    """``snip``: connection sensitivity summed over all weights, S = sum |W * dL/dW|.

    Lee et al., "SNIP: Single-shot Network Pruning based on Connection Sensitivity", ICLR 2019
    (Eq. 6, the unnormalised saliency |g_j * w_j|), summed as in Abdelfattah et al., ICLR 2021.
    """

    name: ClassVar[str] = "snip"
    needs_labels: ClassVar[bool] = True
    needs_grad: ClassVar[bool] = True
    citation: ClassVar[str] = "Lee et al., SNIP, ICLR 2019; " + _ZERO_COST_CITATION

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """One forward and backward on the probe batch."""
        return {
            "score": connection_sensitivity(student, lambda logits: cross_entropy(logits, batch.labels), batch.images)
        }


@register_proxy
class GraspProxy(Proxy):
    """``grasp``: gradient-signal preservation, S = sum(-W * H g), g = dL/dW, H the Hessian.

    Wang et al., "Picking Winning Tickets Before Training by Preserving Gradient Flow", ICLR 2020
    (Eq. 8, S(-theta) = -theta * Hg), summed over Conv2d/Linear weights as in Abdelfattah et al.
    Hg is the gradient of ``z = sum(stopgrad(g) * g)``: one forward, a double backward.
    """

    name: ClassVar[str] = "grasp"
    needs_labels: ClassVar[bool] = True
    needs_grad: ClassVar[bool] = True
    citation: ClassVar[str] = "Wang et al., GraSP, ICLR 2020; " + _ZERO_COST_CITATION

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """One forward, a backward with graph, and a Hessian-vector product.

        Torch's fused attention kernels have no double backward, so attention (ViT students) runs
        on scaled_dot_product_attention's math backend here; networks without attention are
        unaffected."""
        params = list(student.parameters())
        with _grad_enabled(params), sdpa_kernel(SDPBackend.MATH):
            weights, grads = loss_and_weight_grads(student, batch, create_graph=True)
            z = sum((g.detach() * g).sum() for g in grads if g.requires_grad)
            if not isinstance(z, torch.Tensor):  # no weight reaches the loss
                return {"score": 0.0}
            hg = torch.autograd.grad(z, weights, allow_unused=True)
            score = sum((-w.detach() * h).sum() for w, h in zip(weights, hg) if h is not None)
        return {"score": float(score)}


@register_proxy
class FisherProxy(Proxy):
    """``fisher``: Fisher-information saliency of every channel, summed.

    Theis et al., "Faster gaze prediction with dense networks and Fisher pruning", 2018 (Eq. 9):
    Delta_c = 1/(2N) sum_n (sum_{h,w} a_nchw g_nchw)^2 with ``a`` the activation of channel c and
    ``g`` the gradient of the summed cross-entropy w.r.t. it. The activations are the outputs of
    every Conv2d and Linear layer, as in Abdelfattah et al., ICLR 2021, and the score is the sum
    of Delta_c over all channels.

    NASLib's implementation (and so its NAS-Bench-201 file) copies each channel's Delta_c to every
    weight of that channel before summing, which weights each layer by its fan-in
    (in_channels * kh * kw); that variant ranks NAS-Bench-201 differently (see
    ``benchmarks/bench_nb201_proxies.py``). This proxy keeps the paper's per-channel sum.
    """

    name: ClassVar[str] = "fisher"
    needs_labels: ClassVar[bool] = True
    needs_grad: ClassVar[bool] = True
    citation: ClassVar[str] = "Theis et al., Fisher pruning, arXiv:1801.05787 (2018); " + _ZERO_COST_CITATION

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """One forward and a backward to the activations."""
        params = list(student.parameters())
        with (
            _grad_enabled(params),
            capture_outputs(student, (nn.Conv2d,)) as maps,
            capture_outputs(student, (nn.Linear,)) as rows,
        ):
            logits = student(batch.images)
            n = logits.shape[0]
            loss = cross_entropy(logits, batch.labels) * n  # the per-sample losses, summed
            # a conv's channels are dim 1 of (B, C, H, W); a linear layer's the last dim of (B, ..., C)
            live = [(a, 1) for a in maps if a.requires_grad] + [(a, a.dim() - 1) for a in rows if a.requires_grad]
            grads = torch.autograd.grad(loss, [a for a, _ in live], allow_unused=True) if live else []
            score = logits.new_zeros((), dtype=torch.float64)
            for (a, channel), g in zip(live, grads):
                if g is None:
                    continue
                prod = (a.detach() * g).double()
                positions = tuple(d for d in range(1, prod.dim()) if d != channel)
                per_channel = prod.sum(dim=positions) if positions else prod
                score = score + per_channel.square().sum() / (2 * n)
        return {"score": float(score)}
