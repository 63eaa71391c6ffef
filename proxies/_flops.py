"""FLOPs per image, with the formulas of :mod:`torch.utils.flop_counter`.

:class:`~torch.utils.flop_counter.FlopCounterMode` intercepts every operator and slows a CPU
forward pass several times over, so the scorer instead hooks the convolutions and linear layers
of the student during the forward pass it runs anyway, and applies torch's own formulas
(``conv_flop_count``, ``mm_flop``) to the shapes seen there. Like ``FlopCounterMode`` it counts
convolutions and matrix products (a multiply-add is 2 FLOPs) and ignores norms, activations,
pooling and biases; :func:`count_flops` runs ``FlopCounterMode`` itself on the ``meta`` device,
and the tests check that both agree. A module that multiplies activations together (a
transformer's attention) reports those products through its ``matmul_flops(x)`` method
(``spaces/_network.py``), which the hooks add.
"""

from __future__ import annotations

import functools
from typing import Any, Hashable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

__all__ = ["FlopHooks", "count_flops"]


class FlopHooks:
    """Count the FLOPs per image of the first call of every conv/linear module of ``net``, and of
    every module with a ``matmul_flops(x)`` method (attention).

    Use as a context manager around the forward pass(es); read :attr:`per_image` afterwards.
    A module is counted once (its first call), so extra forward passes of a proxy do not add up.
    """

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.flops: dict[str, float] = {}
        self._handles: list[Any] = []

    def _hook(self, name: str, module: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> None:
        if name in self.flops or not args:
            return
        x = args[0]
        batch = x.shape[0] if x.dim() > 1 else 1
        matmul_flops = getattr(module, "matmul_flops", None)
        if callable(matmul_flops):
            total = matmul_flops(x)
        elif isinstance(module, nn.Conv2d):
            total = conv_flop_count(list(x.shape), list(module.weight.shape), list(out.shape), transposed=False)
        else:  # nn.Linear: 2 * rows * in * out, as mm_flop/addmm_flop
            rows = x.numel() // x.shape[-1]
            total = 2 * rows * module.in_features * module.out_features
        self.flops[name] = total / batch

    def __enter__(self) -> "FlopHooks":
        for name, module in self.net.named_modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)) or callable(getattr(module, "matmul_flops", None)):
                self._handles.append(module.register_forward_hook(functools.partial(self._hook, name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    @property
    def per_image(self) -> int:
        """Total FLOPs for one image."""
        return int(round(sum(self.flops.values())))


def count_flops(net: nn.Module, image_size: int) -> int:
    """FLOPs of one image through ``net`` with :class:`FlopCounterMode` on the ``meta`` device."""
    meta = net.to("meta").eval() if next(net.parameters()).device.type != "meta" else net.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta(torch.empty(1, 3, image_size, image_size, device="meta"))
    return int(counter.get_total_flops())


def arch_flops(space: Any, arch: Hashable, num_classes: int, image_size: int) -> int:
    """FLOPs per image of ``arch`` of ``space``: the space's analytic ``count_flops`` where it has
    one (the ViT spaces: a meta-device count of a ViT takes about a second), else counted on a
    network built on the meta device."""
    analytic = getattr(space, "count_flops", None)
    if callable(analytic):
        return int(analytic(arch, num_classes, image_size))
    with torch.device("meta"):
        net = space.build(arch, num_classes=num_classes)
    return count_flops(net, image_size)


__all__ += ["arch_flops"]
