"""``nwot``: NASWOT, the log-determinant of the ReLU activation-code kernel."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from diswot.spaces import FeatureNetwork, NetworkOutput

from ._errors import ProxyError
from ._base import Batch, Proxy, TeacherContext, register_proxy
from ._util import run_hooked

__all__ = ["NwotProxy", "relu_code_kernel_logdet"]

_RELUS: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)


def relu_code_kernel_logdet(kernel: torch.Tensor) -> float:
    """log|K_H| via :func:`torch.linalg.slogdet` (float64); a singular kernel is a ProxyError."""
    sign, logabsdet = torch.linalg.slogdet(kernel.to(torch.float64))
    if float(sign) <= 0 or not bool(torch.isfinite(logabsdet)):
        raise ProxyError(
            "nwot: the ReLU-code kernel is singular (two images of the batch switch on exactly the "
            "same units), so its log-determinant is -inf"
        )
    return float(logabsdet)


@register_proxy
class NwotProxy(Proxy):
    """``nwot`` (NASWOT): score = log|K_H| with K_H[i, j] = N_A - d_H(c_i, c_j).

    Mellor, Turner, Storkey & Crowley, "Neural Architecture Search without Training", ICML 2021,
    Eq. 2: ``c_i`` is the binary code of which ReLU units image ``i`` switches on (over every
    ``nn.ReLU`` of the network), N_A the number of units and d_H the Hamming distance, so
    K_H = sum over ReLUs of ``c c^T + (1 - c)(1 - c)^T``. The log-determinant is computed with
    ``slogdet`` in float64 (no overflow of ``det``). Forward only, student in train mode.
    """

    name: ClassVar[str] = "nwot"
    citation: ClassVar[str] = "Mellor et al., Neural Architecture Search without Training, ICML 2021"

    def refusal(self, student: FeatureNetwork, out: NetworkOutput) -> str | None:
        """Networks without an ``nn.ReLU`` (a ViT's GELU) have no binary activation codes."""
        if any(isinstance(m, _RELUS) for m in student.modules()):
            return None
        return "nwot reads the binary codes of nn.ReLU units (Mellor et al. 2021) and this network has none"

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """One forward pass (no autograd graph) with a pre-hook on every ReLU."""
        n = batch.images.shape[0]
        kernel = torch.zeros((n, n), dtype=torch.float64, device=batch.images.device)
        count = 0

        def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            nonlocal kernel, count
            codes = (args[0].detach().reshape(n, -1) > 0).to(torch.float64)
            kernel = kernel + codes @ codes.t() + (1.0 - codes) @ (1.0 - codes).t()
            count += 1

        handles = [m.register_forward_pre_hook(hook) for m in student.modules() if isinstance(m, _RELUS)]
        if not handles:
            raise ProxyError("nwot: the network has no nn.ReLU module whose activation codes could be read")
        run_hooked(student, batch.images, handles)
        if count == 0:
            raise ProxyError("nwot: no ReLU module ran in the forward pass")
        return {"score": relu_code_kernel_logdet(kernel), "relus": float(count)}
