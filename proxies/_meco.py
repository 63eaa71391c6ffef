"""``meco``: the minimum eigenvalue of the channel correlation of every feature map."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from diswot.spaces import FeatureNetwork

from ._base import Batch, Proxy, TeacherContext, register_proxy
from ._errors import ProxyError
from ._util import run_hooked

__all__ = ["MecoProxy", "min_correlation_eigenvalue"]


def min_correlation_eigenvalue(rows: torch.Tensor) -> float:
    """lambda_min of the Pearson correlation matrix of the rows of ``rows`` (float64).

    Constant rows give nan correlations, which count as 0, as in MeCo's reference code.
    """
    corr = torch.corrcoef(rows.double()).reshape(rows.shape[0], rows.shape[0])  # one row: the 1 x 1 matrix
    corr = torch.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)
    return float(torch.linalg.eigvalsh(corr)[0])


@register_proxy
class MecoProxy(Proxy):
    """``meco``: S = sum over modules of lambda_min(corr(F)), F the first image's map as (C, H*W).

    Jiang, Wang & Bie, "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum
    Eigenvalue of Correlation", NeurIPS 2023, Eq. 4: one forward pass of the probe batch; for every module whose
    output is a feature map, the correlation between its channels over the positions of the first
    image, and the smallest eigenvalue of that matrix, summed. Token maps ``(B, N, D)`` give the
    correlation between tokens, as the reference code's reshape does.
    """

    name: ClassVar[str] = "meco"
    citation: ClassVar[str] = "Jiang et al., MeCo, NeurIPS 2023"

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """One forward pass (no autograd graph), a hook on every module."""
        maps: list[torch.Tensor] = []

        def hook(_module: nn.Module, _args: object, out: object) -> None:
            if isinstance(out, torch.Tensor) and out.dim() >= 3:
                maps.append(out[0].detach().reshape(out.shape[1], -1))

        run_hooked(student, batch.images, [m.register_forward_hook(hook) for m in student.modules()])
        if not maps:
            raise ProxyError("meco reads feature maps of shape (B, C, H, W) and this network gave none")
        return {"score": sum(min_correlation_eigenvalue(f) for f in maps), "maps": float(len(maps))}
