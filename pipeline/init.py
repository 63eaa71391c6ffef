"""Random initialisation of teachers and students (the paper uses Gaussian initialisation)."""

from __future__ import annotations

from typing import Literal

from torch import nn

__all__ = ["INITS", "initialise"]

Init = Literal["kaiming", "normal", "torch"]
INITS = ("kaiming", "normal", "torch")


def initialise(model: nn.Module, init: str = "kaiming") -> nn.Module:
    """Re-initialise ``model`` in place and return it.

    ``kaiming``: conv and linear weights from the Gaussian N(0, 2/fan_in) (He et al. 2015, the
    init the paper's Listing 2 text names), biases 0. ``normal``: weights from N(0, 1).
    ``torch``: PyTorch's default init, untouched. BatchNorm: weight 1, bias 0 for all.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
    if init == "torch":
        return model
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if init == "kaiming":
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            else:
                nn.init.normal_(m.weight, 0.0, 1.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model
