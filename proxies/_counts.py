"""Size baselines: ``params`` and ``flops`` (data-independent; bigger is predicted better).

Both are reported in millions, the unit of NAS-Bench-201 and of NASLib's zero-cost files
(``flops`` counts multiply-accumulates, as NAS-Bench-201's "FLOPs" do).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from diswot.spaces import FeatureNetwork

from ._flops import FlopHooks
from ._base import Batch, BNMode, Proxy, TeacherContext, register_proxy
from ._util import module_modes, preserved_state

__all__ = ["FlopsProxy", "ParamsProxy", "count_macs"]


@register_proxy
class ParamsProxy(Proxy):
    """Number of trainable parameters, in millions.

    Reference: the ``#params`` baseline of Abdelfattah et al., "Zero-Cost Proxies for Lightweight
    NAS", ICLR 2021, and NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022 D&B).
    """

    name: ClassVar[str] = "params"
    needs_data: ClassVar[bool] = False
    citation: ClassVar[str] = "Abdelfattah et al., ICLR 2021 (#params baseline)"

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """``score`` = trainable parameters / 1e6; ``count`` = the exact number."""
        n = sum(p.numel() for p in student.parameters() if p.requires_grad)
        return {"score": n / 1e6, "count": float(n)}


def count_macs(model: torch.nn.Module, image_shape: tuple[int, ...], device: torch.device | str) -> int:
    """Multiply-accumulates of one image through ``model`` (FlopCounterMode's FLOPs / 2).

    Runs one eval-mode forward of a zero image under ``no_grad`` with
    :class:`diswot.proxies.FlopHooks` (``torch.utils.flop_counter``'s formulas applied to
    the conv/linear shapes; ``FlopCounterMode`` itself slows the forward several times over);
    modes and BatchNorm statistics are restored.
    """
    x = torch.zeros((1, *image_shape), device=device, dtype=next(model.parameters()).dtype)
    with preserved_state(model), module_modes(model, training=False), torch.no_grad(), FlopHooks(model) as hooks:
        model(x)
    return hooks.per_image // 2


@register_proxy
class FlopsProxy(Proxy):
    """Multiply-accumulates of one image, in millions ("MFLOPs" as NAS-Bench-201 counts them).

    Counted with the formulas of :mod:`torch.utils.flop_counter` (convolutions and matrix
    products; a multiply-add counts 2 there, so the total is halved). Only the probe batch's
    image shape is used. NASLib's NAS-Bench-201 file also counts pooling and BatchNorm/ReLU
    element operations (e.g. 9 per output of an ``avg_pool_3x3``), so its figures are a few
    MFLOPs higher for pooling-heavy cells; the ranking agrees at Spearman > 0.99.
    Reference: the FLOPs baseline of Abdelfattah et al., ICLR 2021.
    """

    name: ClassVar[str] = "flops"
    needs_data: ClassVar[bool] = False
    bn_mode: ClassVar[BNMode] = "eval"
    citation: ClassVar[str] = "Abdelfattah et al., ICLR 2021 (FLOPs baseline)"

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """``score`` = MACs / 1e6 per image; ``flops`` = FlopCounterMode's count (2 per MAC)."""
        macs = count_macs(student, tuple(batch.images.shape[1:]), batch.images.device)
        return {"score": macs / 1e6, "flops": float(2 * macs)}
