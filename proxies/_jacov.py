"""``jacov``: the correlation of input Jacobians (NAS without training, first version)."""

from __future__ import annotations

from typing import ClassVar

import torch

from diswot.spaces import FeatureNetwork

from ._errors import ProxyError
from ._base import Batch, Proxy, TeacherContext, register_proxy

__all__ = ["JacovProxy", "jacobian_covariance_score"]


def jacobian_covariance_score(jacobians: torch.Tensor, k: float = 1e-5) -> float:
    """-sum_i [log(lambda_i + k) + 1/(lambda_i + k)] over the eigenvalues of corrcoef(J).

    ``jacobians`` is ``(N, D)``, one flattened Jacobian per image. Mellor et al. 2020 (v1), Eq. 2.
    """
    j = jacobians.detach().to(torch.float64).reshape(jacobians.shape[0], -1)
    centred = j - j.mean(dim=1, keepdim=True)
    norms = centred.norm(dim=1)
    if bool((norms <= 0).any()) or not bool(torch.isfinite(norms).all()):
        raise ProxyError(
            "jacov: an image's input Jacobian is constant (the output does not depend on the input), "
            "so the Jacobian correlation is undefined"
        )
    unit = centred / norms[:, None]
    corr = unit @ unit.t()
    eig = torch.linalg.eigvalsh(corr).clamp_min(0.0)
    return float(-(torch.log(eig + k) + 1.0 / (eig + k)).sum())


@register_proxy
class JacovProxy(Proxy):
    """``jacov``: how uncorrelated the input Jacobians of the images of a batch are.

    Mellor, Turner, Storkey & Crowley, "Neural Architecture Search without Training", arXiv
    2006.04647 **v1** (2020), Eq. 2: J_n = d(sum of the logits)/d(x_n), Sigma_J = corrcoef(J),
    score = -sum_i [log(lambda_i + k) + 1/(lambda_i + k)] with k = 1e-5 (higher is better: a
    correlation matrix close to the identity). The later version (ICML 2021) replaced this by the
    ReLU-code kernel, see ``nwot``. Student in train mode, as in Abdelfattah et al., ICLR 2021.
    """

    name: ClassVar[str] = "jacov"
    needs_grad: ClassVar[bool] = True
    citation: ClassVar[str] = "Mellor et al., Neural Architecture Search without Training, arXiv:2006.04647v1"

    def __init__(self, *, k: float = 1e-5) -> None:
        if not k > 0:
            raise ValueError(f"jacov: k must be > 0 (the paper uses 1e-5), got {k!r}")
        self.k = float(k)

    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """One forward and one backward to the input."""
        x = batch.images.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            out = student(x)
            (jac,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
        if jac is None:
            jac = torch.zeros_like(x)
        return {"score": jacobian_covariance_score(jac, self.k)}
