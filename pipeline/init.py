"""Random initialisation of teachers and students (the paper uses Gaussian initialisation)."""

from __future__ import annotations

import hashlib
from typing import Literal

import torch
from torch import nn

from ._choices import DEFAULT_INIT_DRAW, INIT_DRAWS, INITS

__all__ = ["DEFAULT_INIT", "DEFAULT_INIT_DRAW", "INIT_DRAWS", "INITS", "initialise", "layer_seed"]

Init = Literal["gaussian", "kaiming", "normal", "torch"]
DEFAULT_INIT = "gaussian"


def layer_seed(seed: int, name: str, shape: tuple[int, ...]) -> int:
    """The seed of one layer's weights: a 63-bit hash of the draw's ``seed``, the layer's qualified
    name and its weight's shape."""
    digest = hashlib.blake2b(f"{seed}:{name}:{tuple(shape)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def initialise(model: nn.Module, init: str = DEFAULT_INIT, *, seed: int | None = None) -> nn.Module:
    """Re-initialise ``model`` in place and return it (the paper initialises with Gaussians).

    ``gaussian`` (default): conv and linear weights from N(0, 1/(3*fan_in)), the variance of
    PyTorch's default layer init; on the shared NAS-Bench-201 sample it ranked better than
    ``kaiming`` (BENCHMARKS.md). ``kaiming``: N(0, 2/fan_in) (He et al. 2015, named in the paper's
    Listing 2 text). ``normal``: N(0, 1). Biases 0. ``torch``: PyTorch's default init, untouched.
    BatchNorm: weight 1, bias 0 for all but ``torch``.

    ``seed``: each conv and linear weight is drawn from its own generator, seeded by
    :func:`layer_seed` (``seed``, the layer's qualified name, its shape): common random numbers.
    Two students that share a layer by name and shape start from the same weights there, so what
    differs between their scores is what differs between their architectures (BENCHMARKS.md,
    "Common random numbers"). ``None``: every weight from torch's generator in force, one layer
    after the other (how studies made before drew them).
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
    if init == "torch":
        return model
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            generator = _generator(m.weight, seed, name)
            with torch.no_grad():
                m.weight.normal_(0.0, _std(init, m.weight), generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                m.reset_running_stats()
    return model


def _std(init: str, weight: torch.Tensor) -> float:
    """The standard deviation of ``init`` for ``weight`` (fan-in from its shape)."""
    fan_in = weight[0].numel()
    if init == "kaiming":
        return float((2.0 / fan_in) ** 0.5)  # kaiming_normal_(mode="fan_in", nonlinearity="relu")
    if init == "gaussian":
        return float((3.0 * fan_in) ** -0.5)
    return 1.0


def _generator(weight: torch.Tensor, seed: int | None, name: str) -> torch.Generator | None:
    if seed is None:
        return None
    return torch.Generator(device=weight.device).manual_seed(layer_seed(seed, name, tuple(weight.shape)))
