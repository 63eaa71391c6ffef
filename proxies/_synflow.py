"""``synflow``: iterative synaptic flow (data-free), as a one-shot zero-cost proxy."""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from diswot.spaces import FeatureNetwork

from ._base import Batch, BNMode, Proxy, TeacherContext, register_proxy
from ._util import fresh_copy, strip_batchnorm, weight_layers

__all__ = ["SynflowProxy", "absolute_network", "synaptic_flow"]


@register_proxy
class SynflowProxy(Proxy):
    """``synflow``: S = sum over Conv2d/Linear weights of |theta * dR/dtheta|.

    Tanaka et al., "Pruning neural networks without any data by iteratively conserving synaptic
    flow", NeurIPS 2020 (Eq. 2: R = 1^T (prod_l |W_l|) 1), used as a zero-cost proxy by
    Abdelfattah et al., ICLR 2021: on a copy of the student with BatchNorm removed, every
    parameter replaced by its absolute value, one all-ones input image, R = sum of the logits
    (float32, and float64 where float32 overflows: :func:`synaptic_flow`).

    The score is ``ln(1 + S)``: the same ranking as S (NASLib also stores a logarithm), finite
    for very deep networks and 0 for a network whose output does not depend on its input.
    """

    name: ClassVar[str] = "synflow"
    needs_data: ClassVar[bool] = False
    needs_grad: ClassVar[bool] = True
    bn_mode: ClassVar[BNMode] = "none"
    citation: ClassVar[str] = "Tanaka et al., SynFlow, NeurIPS 2020; Abdelfattah et al., ICLR 2021"

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """Works on a BN-free copy with |parameters|; the student is untouched."""
        s = synaptic_flow(fresh_copy(student), batch.images)
        return {"score": math.log1p(s), "synflow": s}


def synaptic_flow(net: torch.nn.Module, images: torch.Tensor) -> float:
    """SynFlow's S of ``net``, which it consumes: its BatchNorm is removed, its parameters made
    |theta| in place. Pass a copy, or a network that nothing uses afterwards (a deep copy of a
    student costs about as much as its forward pass on a CPU).

    The pass runs in float32 (autocast off) and again in float64 only where S or a gradient does
    not fit float32 (ln S above about 88: deep NAS-Bench-201 cells, S0's deepest ResNets): the same
    S to float32's precision (ln S to about 1e-6) at a third of the float64 pass's cost on a CPU.
    A network with grouped (depthwise) convolutions, whose weight gradients are most of the
    backward pass on a CPU, and no normalisation that centres its input (LayerNorm, GroupNorm: its
    output has negative values) has S read from its layers' output gradients where that is exact
    (:func:`_flow_by_outputs`); every other pass reads the weights' gradients (:func:`_flow`).
    """
    net = absolute_network(net).float()
    s = _pass(net, images, torch.float32)
    if not math.isfinite(s):
        s = _pass(net.double(), images, torch.float64)
    return s


#: normalisations that subtract a mean from their input: their outputs are signed
_CENTRING = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.modules.instancenorm._InstanceNorm)


def _pass(net: torch.nn.Module, images: torch.Tensor, dtype: torch.dtype) -> float:
    """One pass of :func:`synaptic_flow` in ``dtype``: by the outputs' gradients where grouped
    convolutions make that cheaper and it is exact, else by the weights'."""
    modules = list(net.modules())
    grouped = any(isinstance(m, torch.nn.Conv2d) and m.groups > 1 for m in modules)
    centred = any(isinstance(m, _CENTRING) for m in modules)
    s = _flow_by_outputs(net, images, dtype) if grouped and not centred else None
    return _flow(net, images, dtype) if s is None else s


def absolute_network(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` (in place) as SynFlow reads it: BatchNorm removed, every parameter |theta|, with gradients."""
    net = strip_batchnorm(net)
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    for p in net.parameters():
        p.requires_grad_(True)
    return net


def _flow(net: torch.nn.Module, images: torch.Tensor, dtype: torch.dtype) -> float:
    """sum |theta * dR/dtheta| over the weights of ``net`` (already |theta|, in ``dtype``), R the
    sum of its logits for one all-ones image; inf where a value overflows ``dtype``."""
    weights = [m.weight for m in weight_layers(net)]
    x = torch.ones((1, *images.shape[1:]), dtype=dtype, device=images.device)
    with torch.enable_grad(), torch.autocast(images.device.type, enabled=False):
        r = net(x).sum()
        if not bool(torch.isfinite(r)):
            return math.inf
        grads = torch.autograd.grad(r, weights, allow_unused=True)
    s = sum(float((w.detach() * g).abs().sum()) for w, g in zip(weights, grads) if g is not None)
    return s if math.isfinite(s) else math.inf


def _flow_by_outputs(net: torch.nn.Module, images: torch.Tensor, dtype: torch.dtype) -> float | None:
    """:func:`_flow`'s S from the gradients of the Conv2d and Linear outputs, without the weights'.

    For a layer y = W * x + b, the sum over W of theta * dR/dtheta is <dR/dy, y - b>. Where every
    layer's input and every dR/dy is non-negative (a ReLU network with |theta| and an all-ones
    input), every theta * dR/dtheta is too, so that sum is SynFlow's sum of absolute values. The
    backward pass then skips the weight gradients (most of its cost on depthwise convolutions:
    NAS-Bench-Macro's SynFlow pass takes half the time or less). ``None`` where a sign is negative
    (LayerNorm, attention) or nothing is a layer: :func:`_flow` is the exact pass there. Each
    output goes on as a copy, so a later in-place activation (``ReLU6(inplace=True)``) leaves the
    captured output as the layer made it. The signs are read with two device syncs in all.
    """
    outputs: list[tuple[torch.nn.Module, torch.Tensor]] = []
    negative: list[torch.Tensor] = []  # per layer: whether its input holds a negative value

    def keep(module: torch.nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> torch.Tensor:
        negative.append((args[0] < 0).any())
        outputs.append((module, out))
        return out.clone()

    handles = [m.register_forward_hook(keep) for m in weight_layers(net)]
    x = torch.ones((1, *images.shape[1:]), dtype=dtype, device=images.device)
    try:
        with torch.enable_grad(), torch.autocast(images.device.type, enabled=False):
            r = net(x).sum()
            if not negative or _any(negative):  # one device sync for every layer's check
                return None
            if not bool(torch.isfinite(r)):
                return math.inf
            used = [(m, y) for m, y in outputs if y.requires_grad]
            grads = torch.autograd.grad(r, [y for _, y in used], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    terms = [(_weight_part(module, y.detach()) * g).sum() for (module, y), g in zip(used, grads) if g is not None]
    if not terms or _any([(g < 0).any() for g in grads if g is not None]):
        return None
    s = float(torch.stack(terms).sum())
    return s if math.isfinite(s) else math.inf


def _any(flags: list[torch.Tensor]) -> bool:
    """Whether any of the boolean scalars is true, read with one device sync."""
    return bool(torch.stack(flags).any())


def _weight_part(module: torch.nn.Module, y: torch.Tensor) -> torch.Tensor:
    """W * x of a Conv2d or Linear output y = W * x + b."""
    bias: torch.Tensor | None = getattr(module, "bias", None)
    if bias is None:
        return y
    return y - (bias.detach().view(1, -1, 1, 1) if isinstance(module, torch.nn.Conv2d) else bias.detach())
