"""``macro``: the MobileNetV2 macro space of NAS-Bench-Macro (Su et al., CVPR 2021, "Prioritized
Architecture Sampling with Monte-Carlo Tree Search", section 4 and its public benchmark).

A CIFAR network of 32 px inputs: a 3x3 stem of 32 channels (BN, ReLU), then 8 searchable layers in
three stages of 2, 3 and 3 layers whose first layer has stride 2 and doubles the channels
(32 -> 64 -> 128 -> 256), then a 1x1 conv to 1280 channels (BN, ReLU), global average pooling and
a linear classifier. Each layer is one of three operations, written as one digit:

* ``0``: identity (at a stage's first layer a 1x1 conv of stride 2 + BN, to change the shape);
* ``1``: MobileNetV2 inverted residual, kernel 3, expansion 3;
* ``2``: inverted residual, kernel 5, expansion 6.

An inverted residual is 1x1 expand (to ``expansion x`` input channels), BN, ReLU, depthwise kxk,
BN, ReLU, 1x1 project, BN, with a shortcut when the shape is kept. 3^8 = 6,561 students, written as
the benchmark does, e.g. ``02012100``. The parameter counts equal the benchmark's (890,666 for
``02012100`` with 10 classes).

Params: ``layer1.kernel`` ... ``layer8.kernel`` in {0, 3, 5}: the depthwise kernel of the layer's
block, 0 for the identity. The kernel names the block (3 goes with expansion 3, 5 with 6), so the
evolutionary sampler's kernel mutation changes a layer's operation and its shrinking repair moves to
a smaller one. Layers = weighted layers (stem, three convs a block, a stride-2 1x1 conv, the head
conv and the FC).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Iterator

import optuna
import torch
from torch import nn

from ._base import ArchError, Limits, Space, register_space
from ._network import FeatureNetwork

__all__ = ["MacroArch", "MacroNetwork", "MacroSpace"]

#: (layers, output channels) of the three stages; the first layer of each has stride 2
STAGES: tuple[tuple[int, int], ...] = ((2, 64), (3, 128), (3, 256))
STEM_WIDTH = 32
HEAD_WIDTH = 1280
#: op digit -> (depthwise kernel, expansion); op 0 is the identity
OPS: dict[int, tuple[int, int] | None] = {0: None, 1: (3, 3), 2: (5, 6)}
KERNELS: tuple[int, ...] = (0, 3, 5)
_KERNEL_TO_OP = {0: 0, 3: 1, 5: 2}
NUM_LAYERS = sum(n for n, _ in STAGES)
_PATTERN = re.compile(r"^[012]{8}$")


@dataclass(frozen=True)
class MacroArch:
    """A NAS-Bench-Macro student: the operation (0, 1 or 2) of each of the 8 layers."""

    ops: tuple[int, ...]

    def __post_init__(self) -> None:
        try:
            ops = tuple(self.ops)
        except TypeError:
            ops = ()
        if len(ops) != NUM_LAYERS or any(isinstance(o, bool) or o not in OPS for o in ops):
            raise ArchError(f"macro ops must be {NUM_LAYERS} values from {{0, 1, 2}}, e.g. 02012100; got {self.ops!r}")
        object.__setattr__(self, "ops", tuple(int(o) for o in ops))

    def __str__(self) -> str:
        return "".join(map(str, self.ops))


def _layout() -> Iterator[tuple[int, int, int]]:
    """(layer index, stride, output channels) of the 8 searchable layers."""
    i = 0
    for layers, width in STAGES:
        for j in range(layers):
            yield i, 2 if j == 0 else 1, width
            i += 1


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand, BN, ReLU, depthwise kxk, BN, ReLU, 1x1 project, BN."""

    def __init__(self, c_in: int, c_out: int, *, kernel: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        self.body = nn.Sequential(
            nn.Conv2d(c_in, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out: torch.Tensor = self.body(x)
        return x + out if self.shortcut else out


def _layer(op: int, c_in: int, c_out: int, stride: int) -> nn.Module:
    spec = OPS[op]
    if spec is not None:
        kernel, expansion = spec
        return InvertedResidual(c_in, c_out, kernel=kernel, expansion=expansion, stride=stride)
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class MacroNetwork(FeatureNetwork):
    """The NAS-Bench-Macro network of ``arch``; ``forward_features`` ends after the 1280-channel head conv."""

    def __init__(self, arch: MacroArch, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, STEM_WIDTH, 3, 1, 1, bias=False), nn.BatchNorm2d(STEM_WIDTH), nn.ReLU(inplace=True)
        )
        layers, c = [], STEM_WIDTH
        for i, stride, width in _layout():
            layers.append(_layer(arch.ops[i], c, width, stride))
            c = width
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Conv2d(c, HEAD_WIDTH, 1, bias=False), nn.BatchNorm2d(HEAD_WIDTH), nn.ReLU(inplace=True)
        )
        self.classifier = nn.Linear(HEAD_WIDTH, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out: torch.Tensor = self.head(self.layers(self.stem(x)))
        return out


def _bn(c: int) -> int:
    return 2 * c


def macro_params(arch: MacroArch, num_classes: int) -> int:
    """Analytic parameter count of :class:`MacroNetwork` (equal to the built network's)."""
    total = 3 * STEM_WIDTH * 9 + _bn(STEM_WIDTH)
    c = STEM_WIDTH
    for i, stride, width in _layout():
        spec = OPS[arch.ops[i]]
        if spec is not None:
            kernel, expansion = spec
            h = c * expansion
            total += c * h + _bn(h) + h * kernel * kernel + _bn(h) + h * width + _bn(width)
        elif stride != 1 or c != width:
            total += c * width + _bn(width)
        c = width
    return total + c * HEAD_WIDTH + _bn(HEAD_WIDTH) + HEAD_WIDTH * num_classes + num_classes


@register_space
class MacroSpace(Space[MacroArch]):
    """NAS-Bench-Macro's 6,561 MobileNetV2 students for CIFAR (32 px, 10 classes by default)."""

    name = "macro"
    image_size = 32
    default_num_classes = 10
    default_limits = Limits()

    @property
    def fixed_feature_width(self) -> int | None:
        """Every macro network ends with the 1280-channel head conv."""
        return HEAD_WIDTH

    def suggest(self, trial: optuna.trial.BaseTrial) -> MacroArch:
        """Suggest each layer's block as its depthwise kernel (``layerN.kernel`` in {0, 3, 5})."""
        kernels = [trial.suggest_categorical(f"layer{i + 1}.kernel", KERNELS) for i in range(NUM_LAYERS)]
        return MacroArch(tuple(_KERNEL_TO_OP[int(k)] for k in kernels))

    def to_params(self, arch: MacroArch) -> dict[str, Any]:
        """``{"layer1.kernel": 0|3|5, ...}``."""
        return {f"layer{i + 1}.kernel": KERNELS[op] for i, op in enumerate(_as_arch(arch).ops)}

    def encode(self, arch: MacroArch) -> str:
        """The 8 op digits, as NAS-Bench-Macro writes them."""
        return str(_as_arch(arch))

    def decode(self, text: str) -> MacroArch:
        """Parse 8 digits from {0, 1, 2}, e.g. ``02012100``."""
        s = text.strip() if isinstance(text, str) else ""
        if not _PATTERN.match(s):
            raise ArchError(
                f"cannot read {text!r} as a macro architecture; expected 8 digits from 0, 1, 2 "
                "(0 identity, 1 inverted residual k3 e3, 2 inverted residual k5 e6), e.g. 02012100"
            )
        return MacroArch(tuple(int(ch) for ch in s))

    def build(self, arch: MacroArch, num_classes: int | None = None) -> FeatureNetwork:
        """The network of ``arch`` (random init)."""
        return MacroNetwork(_as_arch(arch), self._num_classes(num_classes))

    def count_params(self, arch: MacroArch, num_classes: int | None = None) -> int:
        """Analytic parameter count (equal to the built network's and to the benchmark's)."""
        return macro_params(_as_arch(arch), self._num_classes(num_classes))

    def count_layers(self, arch: MacroArch) -> int:
        """Weighted layers: stem, 3 per inverted residual, 1 per stride-2 identity, head conv, FC."""
        ops = _as_arch(arch).ops
        shape_changes = sum(1 for i, stride, _ in _layout() if ops[i] == 0 and stride == 2)
        return 1 + 3 * sum(1 for o in ops if o) + shape_changes + 2

    def check(self, arch: MacroArch, limits: Limits | None = None, num_classes: int | None = None) -> str | None:
        """``None`` when ``arch`` is a macro arch within ``limits``, else the reason."""
        if not isinstance(arch, MacroArch):
            return f"{arch!r} is not a macro architecture (MacroArch)"
        return super().check(arch, limits, num_classes)

    def enumerate(self) -> Iterator[MacroArch]:
        """All 6,561 architectures, in the order of their digit strings."""
        for ops in itertools.product(sorted(OPS), repeat=NUM_LAYERS):
            yield MacroArch(ops)

    def smallest(self, num_classes: int | None = None) -> MacroArch:
        """``00000000``: every layer the identity."""
        return MacroArch((0,) * NUM_LAYERS)


def _as_arch(arch: object) -> MacroArch:
    if not isinstance(arch, MacroArch):
        raise ArchError(f"{arch!r} is not a macro architecture; expected MacroArch((o1, ..., o8))")
    return arch
