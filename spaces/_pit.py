"""``pit-ti``: a pooling-based ViT space around PiT-Ti (Heo, Yun, Han, Chun, Choe, Oh,
"Rethinking Spatial Dimensions of Vision Transformers", ICCV 2021), 224 px inputs.

A conv patch embedding (kernel 16, stride 8: a 27 x 27 map at 224 px) plus a learned position
map, a class token, three stages of pre-norm encoder blocks (``spaces/_vit.py``) over the class
token and the map's tokens, a final LayerNorm and a linear head on the class token. Stage ``s``
has width ``C_s = base * heads_s`` (``heads_s`` heads of ``base`` channels). Between stages,
PiT's pooling layer halves the map and widens it to the next stage's width: a grouped 3x3 conv of
stride 2, padding 1 (PiT's ``conv_head_pooling``: kernel stride + 1, padding stride // 2) on the
map, and a linear layer for the class token. PiT's groups are the input channels, the output
being twice as wide; here a stage may also keep or lower the width, so the groups are
``gcd(C_in, C_out)``, which is ``C_in`` whenever ``C_out`` is a multiple of it.

Searched: ``base`` in {16, 24, 32, 40}, one MLP ratio in {2, 4, 6, 8} for all blocks (MLP width
``ratio * C_s``), the depth of each stage in {1, 2, 3}, {4, 6, 8} and {2, 4, 6}, and its heads
in {2, 4, 8}. PiT-Ti is ``B32|R4|D2,6,4|H2,4,8`` (4.85M parameters with 1,000 classes, as timm's
``pit_ti_224``).

Params, in this order: ``base.width`` (16..40 step 8), ``mlp.ratio``, then for each stage s
``stage{s}.depth`` (an int with step 1, 2, 2) and ``heads.stage{s}``. The evolutionary sampler
mutates one block of them (``samplers/_mutation.py``): ``base`` (as a width), the ratio, one
stage's depth (one step) or one stage's heads (the ``heads`` block; named so, the heads change
as often as the ratio instead of riding along a depth mutation).

String (canonical): ``B<base>|R<ratio>|D<d1>,<d2>,<d3>|H<h1>,<h2>,<h3>``, e.g. ``B16|R6|D2,8,4|H2,4,4``.

Parameters (``count_params``), ``K`` classes, ``h_s = ratio * C_s``, ``g = gcd(C_{s-1}, C_s)``::

    patch conv 768 C_1 + C_1, position 729 C_1, class token C_1,
    sum_s d_s (4 C_s^2 + 2 C_s h_s + 9 C_s + h_s),
    pooling into stage s = 2, 3: conv 9 C_s C_{s-1} / g + C_s, class-token linear C_{s-1} C_s + C_s,
    final LayerNorm 2 C_3, head C_3 K + K

Layers (``count_layers``): the patch conv, 4 linear layers per block, the two pooling convs and
the head (the class token's linear layers run beside the pooling convs and are not counted).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import optuna
import torch
from torch import nn

from ._base import ArchError, Limits, Space, register_space
from ._network import FeatureNetwork
from ._vit import LN_EPS, ClassTokenNetwork, EncoderBlock, block_params, resize_grid

__all__ = ["PiTArch", "PiTNetwork", "PiTSpace"]

BASE_DIMS: tuple[int, ...] = (16, 24, 32, 40)
RATIOS: tuple[int, ...] = (2, 4, 6, 8)
STAGE_DEPTHS: tuple[tuple[int, ...], ...] = ((1, 2, 3), (4, 6, 8), (2, 4, 6))
HEADS: tuple[int, ...] = (2, 4, 8)
PATCH, STRIDE = 16, 8
_EXAMPLE = "B32|R4|D2,6,4|H2,4,8"


def _ints(values: Any, what: str) -> tuple[int, ...]:
    try:
        out: tuple[Any, ...] = tuple(values)
    except TypeError:
        raise ArchError(f"{what} must be a sequence of 3 ints, got {values!r}") from None
    if len(out) != 3 or any(isinstance(v, bool) or int(v) != v for v in out):
        raise ArchError(f"{what} must be 3 ints, one per stage, got {values!r}")
    return tuple(int(v) for v in out)


@dataclass(frozen=True)
class PiTArch:
    """A PiT student: base width (channels per head), MLP ratio, and per stage depth and heads."""

    base: int
    ratio: int
    depths: tuple[int, int, int]
    heads: tuple[int, int, int]

    def __post_init__(self) -> None:
        if isinstance(self.base, bool) or self.base not in BASE_DIMS:
            raise ArchError(f"base width must be one of {', '.join(map(str, BASE_DIMS))}, got {self.base!r}")
        if isinstance(self.ratio, bool) or self.ratio not in RATIOS:
            raise ArchError(f"MLP ratio must be one of {', '.join(map(str, RATIOS))}, got {self.ratio!r}")
        depths, heads = _ints(self.depths, "depths"), _ints(self.heads, "heads")
        for s, (d, allowed) in enumerate(zip(depths, STAGE_DEPTHS), start=1):
            if d not in allowed:
                raise ArchError(f"stage {s} depth must be one of {', '.join(map(str, allowed))}, got {d}")
        if any(h not in HEADS for h in heads):
            raise ArchError(f"heads must be 2, 4 or 8 in each stage, got {', '.join(map(str, heads))}")
        object.__setattr__(self, "base", int(self.base))
        object.__setattr__(self, "ratio", int(self.ratio))
        object.__setattr__(self, "depths", depths)
        object.__setattr__(self, "heads", heads)

    @property
    def widths(self) -> tuple[int, ...]:
        """Channels of each stage: ``base * heads``."""
        return tuple(self.base * h for h in self.heads)

    def __str__(self) -> str:
        return f"B{self.base}|R{self.ratio}|D{','.join(map(str, self.depths))}|H{','.join(map(str, self.heads))}"


def _grid(image_size: int) -> int:
    return (image_size - PATCH) // STRIDE + 1


class _Pool(nn.Module):
    """PiT's pooling: a grouped 3x3 stride-2 conv on the map, a linear layer on the class token."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, groups=math.gcd(c_in, c_out))
        self.fc = nn.Linear(c_in, c_out)

    def forward(self, x: torch.Tensor, cls: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled ``(map, class token)``."""
        return self.conv(x), self.fc(cls)


class PiTNetwork(ClassTokenNetwork):
    """The network of a :class:`PiTArch`; features are the last stage's tokens after the final
    norm, ``(B, 1 + H W, C_3)``, class token first; the pooled vector is the class token."""

    def __init__(self, arch: PiTArch, *, num_classes: int, image_size: int = 224) -> None:
        super().__init__()
        widths, grid = arch.widths, _grid(image_size)
        self.patch_embed = nn.Conv2d(3, widths[0], PATCH, STRIDE)
        self.pos_embed = nn.Parameter(torch.zeros(1, widths[0], grid, grid))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, widths[0]))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)  # PiT's initialisation
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.pools = nn.ModuleList(_Pool(widths[s - 1], widths[s]) for s in (1, 2))
        self.stages = nn.ModuleList(
            nn.Sequential(*(EncoderBlock(dim=c, heads=h, hidden=arch.ratio * c) for _ in range(d)))
            for c, h, d in zip(widths, arch.heads, arch.depths)
        )
        self.norm = nn.LayerNorm(widths[-1], eps=LN_EPS)
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's tokens after the final LayerNorm, class token first."""
        x = self.patch_embed(x)
        x = x + resize_grid(self.pos_embed, (x.shape[2], x.shape[3]))
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        tokens = x
        for s, blocks in enumerate(self.stages):
            if s:
                x, cls = self.pools[s - 1](x, cls)
            b, c, height, width = x.shape
            tokens = blocks(torch.cat([cls, x.flatten(2).transpose(1, 2)], dim=1))
            cls = tokens[:, :1]
            x = tokens[:, 1:].transpose(1, 2).reshape(b, c, height, width)
        out: torch.Tensor = self.norm(tokens)
        return out


@register_space
class PiTSpace(Space[PiTArch]):
    """PiT-Ti-like pooling ViTs (module docstring): 4 x 4 x 27 x 27 = 11,664 students, 224 px."""

    name = "pit-ti"
    image_size = 224
    own_image_size = True
    default_num_classes = 1000
    default_limits = Limits()

    def suggest(self, trial: optuna.trial.BaseTrial) -> PiTArch:
        """Suggest the base width, the MLP ratio, then each stage's depth and heads."""
        base = int(trial.suggest_int("base.width", BASE_DIMS[0], BASE_DIMS[-1], step=8))
        ratio = int(trial.suggest_categorical("mlp.ratio", RATIOS))
        depths, heads = [], []
        for s, allowed in enumerate(STAGE_DEPTHS, start=1):
            step = allowed[1] - allowed[0]
            depths.append(int(trial.suggest_int(f"stage{s}.depth", allowed[0], allowed[-1], step=step)))
            heads.append(int(trial.suggest_categorical(f"heads.stage{s}", HEADS)))
        return PiTArch(base, ratio, (depths[0], depths[1], depths[2]), (heads[0], heads[1], heads[2]))

    def to_params(self, arch: PiTArch) -> dict[str, Any]:
        """The params :meth:`suggest` records for ``arch``."""
        arch = self._as_arch(arch)
        params: dict[str, Any] = {"base.width": arch.base, "mlp.ratio": arch.ratio}
        for s in range(3):
            params[f"stage{s + 1}.depth"] = arch.depths[s]
            params[f"heads.stage{s + 1}"] = arch.heads[s]
        return params

    def encode(self, arch: PiTArch) -> str:
        """The canonical string, e.g. ``B32|R4|D2,6,4|H2,4,8``."""
        return str(self._as_arch(arch))

    def decode(self, text: str) -> PiTArch:
        """Parse the canonical string; raises :class:`ArchError` naming what is wrong."""
        if not isinstance(text, str) or not text.strip():
            raise ArchError(f"expected a {self.name} arch string like {_EXAMPLE}; got {text!r}")
        match = re.fullmatch(r"B(\d+)\|R(\d+)\|D(\d+),(\d+),(\d+)\|H(\d+),(\d+),(\d+)", text.strip())
        if match is None:
            raise ArchError(
                f"{text!r} is not a {self.name} arch string; expected B<base>|R<ratio>|D<3 depths>|H<3 heads>, "
                f"e.g. {_EXAMPLE}"
            )
        v = [int(g) for g in match.groups()]
        try:
            return PiTArch(v[0], v[1], (v[2], v[3], v[4]), (v[5], v[6], v[7]))
        except ArchError as exc:
            raise ArchError(f"{text!r}: {exc}; expected e.g. {_EXAMPLE}") from None

    def build(self, arch: PiTArch, num_classes: int | None = None) -> FeatureNetwork:
        """The PiT network (random init) for ``arch``."""
        return PiTNetwork(self._as_arch(arch), num_classes=self._num_classes(num_classes), image_size=self.image_size)

    def count_params(self, arch: PiTArch, num_classes: int | None = None) -> int:
        """Analytic parameter count (module docstring; equal to the built network's)."""
        arch = self._as_arch(arch)
        k, (c1, c2, c3) = self._num_classes(num_classes), arch.widths
        total = 3 * PATCH * PATCH * c1 + c1 + _grid(self.image_size) ** 2 * c1 + c1
        for c, d in zip(arch.widths, arch.depths):
            total += d * block_params(c, arch.ratio * c)
        for c_in, c_out in ((c1, c2), (c2, c3)):
            total += 9 * c_out * (c_in // math.gcd(c_in, c_out)) + c_out + c_in * c_out + c_out
        return total + 2 * c3 + c3 * k + k

    def count_flops(self, arch: PiTArch, num_classes: int | None = None, image_size: int | None = None) -> int:
        """FLOPs per image, analytic, as :mod:`torch.utils.flop_counter` counts them (2 per
        multiply-add; convolutions and matrix products, attention's ``Q K^T`` and ``A V`` included)."""
        arch = self._as_arch(arch)
        k, widths = self._num_classes(num_classes), arch.widths
        grid = _grid(image_size or self.image_size)
        total = 2 * grid * grid * widths[0] * 3 * PATCH * PATCH
        for s, (c, d) in enumerate(zip(widths, arch.depths)):
            if s:
                c_in = widths[s - 1]
                grid = (grid - 1) // 2 + 1  # 3x3, stride 2, padding 1
                total += 2 * grid * grid * c * (c_in // math.gcd(c_in, c)) * 9 + 2 * c_in * c
            t = grid * grid + 1
            total += d * (2 * t * (4 * c * c + 2 * c * arch.ratio * c) + 4 * t * t * c)
        return total + 2 * widths[-1] * k

    def count_layers(self, arch: PiTArch) -> int:
        """Patch conv + 4 linear layers per block + 2 pooling convs + head."""
        return 4 * sum(self._as_arch(arch).depths) + 4

    def check(self, arch: PiTArch, limits: Limits | None = None, num_classes: int | None = None) -> str | None:
        """Also rejects an arch of another space."""
        if not isinstance(arch, PiTArch):
            return f"{arch!r} is not a {self.name} architecture (PiTArch)"
        return super().check(arch, limits, num_classes)

    def smallest(self, num_classes: int | None = None) -> PiTArch:
        """The fewest-parameter arch: base 16, ratio 2, the shallowest stages, 2 heads each."""
        return PiTArch(BASE_DIMS[0], RATIOS[0], (1, 4, 2), (2, 2, 2))

    def _as_arch(self, arch: object) -> PiTArch:
        if not isinstance(arch, PiTArch):
            raise ArchError(f"{arch!r} is not a {self.name} architecture; expected e.g. {_EXAMPLE}")
        return arch
