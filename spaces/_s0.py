"""S0: the ResNet20-based depth space of DisWOT (supplementary B.1, Table 8).

A CIFAR ResNet (16-channel 3x3 stem, stages of 16 / 32 / 64 channels with strides 1 / 2 / 2) whose
three stage depths are each searched in {1, 3, 5, 7}: 4^3 = 64 architectures, written as the paper
does, ``ResNet[7,1,3]``. Params: ``stage1.depth``, ``stage2.depth``, ``stage3.depth``
(``suggest_int(name, 1, 7, step=2)``). Layers = 2 * sum(depths) + 2 (stem conv and FC included,
so ``ResNet[3,3,3]`` is ResNet20).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Iterator

import optuna

from ._base import ArchError, Limits, Space, register_space
from ._network import FeatureNetwork
from ._resnet_cifar import cifar_resnet, cifar_resnet_params

__all__ = ["ResNetArch", "S0Space"]

_DEPTHS = (1, 3, 5, 7)
_WIDTHS = (16, 32, 64)
_PATTERN = re.compile(r"^\s*ResNet\s*\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]\s*$")


@dataclass(frozen=True)
class ResNetArch:
    """An S0 student: the number of BasicBlocks in each of the three stages, each in {1, 3, 5, 7}."""

    depths: tuple[int, int, int]

    def __post_init__(self) -> None:
        try:
            depths = tuple(self.depths)
        except TypeError:
            depths = ()
        if len(depths) != 3 or any(isinstance(d, bool) or d not in _DEPTHS for d in depths):
            raise ArchError(f"S0 depths must be three values from {{1, 3, 5, 7}}, e.g. (7, 1, 3); got {self.depths!r}")
        object.__setattr__(self, "depths", tuple(int(d) for d in depths))

    def __str__(self) -> str:
        return f"ResNet[{','.join(map(str, self.depths))}]"


@register_space
class S0Space(Space[ResNetArch]):
    """The 64 depth variants of ResNet20 for CIFAR-100 (DisWOT supplementary, Table 8)."""

    name = "s0"
    image_size = 32
    default_num_classes = 100
    default_limits = Limits()

    @property
    def fixed_feature_width(self) -> int | None:
        """Every S0 network ends with 64 channels."""
        return _WIDTHS[-1]

    def suggest(self, trial: optuna.trial.BaseTrial) -> ResNetArch:
        """Suggest the three stage depths (``stageN.depth`` in 1..7, step 2)."""
        depths = tuple(int(trial.suggest_int(f"stage{i}.depth", 1, 7, step=2)) for i in (1, 2, 3))
        return ResNetArch(depths)  # type: ignore[arg-type]

    def to_params(self, arch: ResNetArch) -> dict[str, Any]:
        """``{"stage1.depth": d1, "stage2.depth": d2, "stage3.depth": d3}``."""
        return {f"stage{i + 1}.depth": d for i, d in enumerate(_as_arch(arch).depths)}

    def encode(self, arch: ResNetArch) -> str:
        """``ResNet[d1,d2,d3]``, as in the paper."""
        return str(_as_arch(arch))

    def decode(self, text: str) -> ResNetArch:
        """Parse ``ResNet[d1,d2,d3]`` (spaces allowed) with each depth in {1, 3, 5, 7}."""
        match = _PATTERN.match(text) if isinstance(text, str) else None
        if match is None:
            raise ArchError(
                f"cannot read {text!r} as an S0 architecture; expected ResNet[d1,d2,d3], e.g. ResNet[7,1,3]"
            )
        depths = tuple(int(g) for g in match.groups())
        try:
            return ResNetArch(depths)  # type: ignore[arg-type]
        except ArchError as exc:
            raise ArchError(f"{text!r}: {exc}") from None

    def build(self, arch: ResNetArch, num_classes: int | None = None) -> FeatureNetwork:
        """The CIFAR ResNet with the arch's stage depths (16/32/64 channels)."""
        return cifar_resnet(_as_arch(arch).depths, _WIDTHS, num_classes=self._num_classes(num_classes))

    def count_params(self, arch: ResNetArch, num_classes: int | None = None) -> int:
        """Analytic parameter count (equal to the built network's)."""
        return cifar_resnet_params(_as_arch(arch).depths, _WIDTHS, num_classes=self._num_classes(num_classes))

    def count_layers(self, arch: ResNetArch) -> int:
        """``2 * sum(depths) + 2``: two convs per block plus the stem conv and the FC."""
        return 2 * sum(_as_arch(arch).depths) + 2

    def check(self, arch: ResNetArch, limits: Limits | None = None, num_classes: int | None = None) -> str | None:
        """``None`` when ``arch`` is an S0 arch within ``limits``, else the reason."""
        if not isinstance(arch, ResNetArch):
            return f"{arch!r} is not an S0 architecture (ResNetArch)"
        return super().check(arch, limits, num_classes)

    def enumerate(self) -> Iterator[ResNetArch]:
        """All 64 architectures, in lexicographic order of the depths."""
        for depths in itertools.product(_DEPTHS, repeat=3):
            yield ResNetArch(depths)  # type: ignore[arg-type]


def _as_arch(arch: object) -> ResNetArch:
    if not isinstance(arch, ResNetArch):
        raise ArchError(f"{arch!r} is not an S0 architecture; expected ResNetArch((d1, d2, d3))")
    return arch
