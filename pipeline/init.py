"""Random initialisation of teachers and students (the paper uses Gaussian initialisation)."""

from __future__ import annotations

from typing import Literal

from torch import nn

from ._choices import INITS

__all__ = ["DEFAULT_INIT", "INITS", "initialise"]

Init = Literal["gaussian", "kaiming", "normal", "torch"]
DEFAULT_INIT = "gaussian"


def initialise(model: nn.Module, init: str = DEFAULT_INIT) -> nn.Module:
    """Re-initialise ``model`` in place and return it (the paper initialises with Gaussians).

    ``gaussian`` (default): conv and linear weights from N(0, 1/(3*fan_in)), the variance of
    PyTorch's default layer init; on the shared NAS-Bench-201 sample it ranked better than
    ``kaiming`` (BENCHMARKS.md). ``kaiming``: N(0, 2/fan_in) (He et al. 2015, named in the paper's
    Listing 2 text). ``normal``: N(0, 1). Biases 0. ``torch``: PyTorch's default init, untouched.
    BatchNorm: weight 1, bias 0 for all but ``torch``.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
    if init == "torch":
        return model
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if init == "kaiming":
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif init == "gaussian":
                fan_in = m.weight[0].numel()
                nn.init.normal_(m.weight, 0.0, (3.0 * fan_in) ** -0.5)
            else:
                nn.init.normal_(m.weight, 0.0, 1.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                m.reset_running_stats()
    return model
