"""``autoformer-ti``: the AutoFormer-Tiny space (Chen, Peng, Fu, Ling, "AutoFormer: Searching
Transformers for Visual Recognition", ICCV 2021, Table 1, supernet-tiny), 224 px inputs.

A DeiT-style ViT (Touvron et al., ICML 2021): a 16x16 stride-16 conv patch embedding (196 patches
at 224 px), a class token, a learned position embedding (197 x E), ``depth`` pre-norm encoder
blocks (``spaces/_vit.py``), a final LayerNorm and a linear head on the class token.

Searched: the embedding width ``E`` in {192, 216, 240}, shared by every layer; the depth in
{12, 13, 14}; per layer its number of heads in {3, 4} (the heads split ``E``: every pair divides)
and its MLP ratio in {3.5, 4.0} (MLP width ``int(ratio * E)``). AutoFormer's released supernet
also varies the Q-K-V width (64 per head); here it is ``E``, as in DeiT.

Params, suggested in this order: ``embed.width`` (192..240 step 24), ``body.depth`` (12..14), then
for each layer i = 1..depth ``layers.ratio{i}`` and ``layers.heads{i}`` (a layer beyond the depth
suggests nothing). The names make three blocks for the evolutionary sampler (``samplers/_mutation.py``
picks one block per mutation): the width (one choice up or down), the depth (+-1; a new layer
draws its choices) and the per-layer choices (one layer's heads or ratio), each a third of the
mutations, however deep the network.

String (canonical): ``E<width>|R<ratio>,...|H<heads>,...``, one ratio and one head count per
layer, the depth being the length of the lists, e.g. ``E192|R3.5,4,...|H3,4,...``.

Parameters (``count_params``), ``K`` classes, ``h_i = int(r_i E)``::

    patch conv 768 E + E, class token E, position 197 E,
    sum_i (4 E^2 + 2 E h_i + 9 E + h_i), final LayerNorm 2 E, head E K + K

Layers (``count_layers``): the patch conv, 4 linear layers per block (qkv, proj, fc1, fc2) and
the head: ``4 depth + 2`` (depth 12: 50).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import optuna
import torch
from torch import nn

from ._base import ArchError, Limits, Space, register_space
from ._network import FeatureNetwork
from ._vit import LN_EPS, ClassTokenNetwork, EncoderBlock, block_params, resize_grid

__all__ = ["AutoFormerArch", "AutoFormerNetwork", "AutoFormerSpace"]

EMBED_DIMS: tuple[int, ...] = (192, 216, 240)
DEPTHS: tuple[int, ...] = (12, 13, 14)
HEADS: tuple[int, ...] = (3, 4)
RATIOS: tuple[float, ...] = (3.5, 4.0)
PATCH = 16
_SHORT_EXAMPLE = "E192|R3.5,4,...|H3,4,... (one ratio and one head count per layer, 12 to 14 layers)"


def _fmt(ratio: float) -> str:
    return f"{ratio:g}"


@dataclass(frozen=True)
class AutoFormerArch:
    """An AutoFormer-Ti student: embedding width and, per layer, the MLP ratio and the head count."""

    embed: int
    ratios: tuple[float, ...]
    heads: tuple[int, ...]

    def __post_init__(self) -> None:
        if isinstance(self.embed, bool) or not isinstance(self.embed, int) or self.embed not in EMBED_DIMS:
            raise ArchError(f"embedding width must be one of {', '.join(map(str, EMBED_DIMS))}, got {self.embed!r}")
        try:
            ratios = tuple(float(r) for r in self.ratios)
            heads = tuple(int(h) for h in self.heads)
        except (TypeError, ValueError):
            raise ArchError(
                f"ratios and heads must be sequences of numbers, got {self.ratios!r}, {self.heads!r}"
            ) from None
        if len(ratios) != len(heads) or len(ratios) not in DEPTHS:
            raise ArchError(
                f"one MLP ratio and one head count per layer, 12 to 14 layers; got {len(ratios)} ratios and "
                f"{len(heads)} head counts"
            )
        if any(r not in RATIOS for r in ratios):
            raise ArchError(f"MLP ratios must be 3.5 or 4, got {', '.join(map(_fmt, ratios))}")
        if any(h not in HEADS for h in heads):
            raise ArchError(f"head counts must be 3 or 4, got {', '.join(map(str, heads))}")
        object.__setattr__(self, "ratios", ratios)
        object.__setattr__(self, "heads", heads)

    @property
    def depth(self) -> int:
        """Number of encoder blocks."""
        return len(self.ratios)

    def hidden(self, layer: int) -> int:
        """MLP width of ``layer`` (0-based): ``int(ratio * E)``."""
        return int(self.ratios[layer] * self.embed)

    def __str__(self) -> str:
        return f"E{self.embed}|R{','.join(map(_fmt, self.ratios))}|H{','.join(map(str, self.heads))}"


class AutoFormerNetwork(ClassTokenNetwork):
    """The ViT of an :class:`AutoFormerArch`; features are all tokens after the final norm,
    ``(B, 1 + patches, E)``, and the pooled vector is the class token."""

    def __init__(self, arch: AutoFormerArch, *, num_classes: int, image_size: int = 224) -> None:
        super().__init__()
        e = arch.embed
        self.grid = image_size // PATCH
        self.patch_embed = nn.Conv2d(3, e, PATCH, PATCH)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, e))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid * self.grid, e))
        nn.init.trunc_normal_(self.cls_token, std=0.02)  # DeiT's initialisation
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.Sequential(
            *(EncoderBlock(dim=e, heads=arch.heads[i], hidden=arch.hidden(i)) for i in range(arch.depth))
        )
        self.norm = nn.LayerNorm(e, eps=LN_EPS)
        self.classifier = nn.Linear(e, num_classes)

    def _position(self, height: int, width: int) -> torch.Tensor:
        cls_pos, grid = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        if (height, width) != (self.grid, self.grid):
            square = grid.transpose(1, 2).reshape(1, -1, self.grid, self.grid)
            grid = resize_grid(square, (height, width)).flatten(2).transpose(1, 2)
        return torch.cat([cls_pos, grid], dim=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The tokens ``(B, 1 + patches, E)`` after the final LayerNorm, class token first."""
        x = self.patch_embed(x)
        b, _, height, width = x.shape
        tokens = torch.cat([self.cls_token.expand(b, -1, -1), x.flatten(2).transpose(1, 2)], dim=1)
        out: torch.Tensor = self.norm(self.blocks(tokens + self._position(height, width)))
        return out


@register_space
class AutoFormerSpace(Space[AutoFormerArch]):
    """AutoFormer-Ti (module docstring): 3 widths x 3 depths x 4 choices per layer, 224 px."""

    name = "autoformer-ti"
    image_size = 224
    own_image_size = True
    default_num_classes = 1000
    default_limits = Limits()

    def suggest(self, trial: optuna.trial.BaseTrial) -> AutoFormerArch:
        """Suggest the width, the depth, then each layer's MLP ratio and head count."""
        embed = int(trial.suggest_int("embed.width", EMBED_DIMS[0], EMBED_DIMS[-1], step=EMBED_DIMS[1] - EMBED_DIMS[0]))
        depth = int(trial.suggest_int("body.depth", DEPTHS[0], DEPTHS[-1]))
        ratios, heads = [], []
        for i in range(1, depth + 1):
            ratios.append(float(trial.suggest_categorical(f"layers.ratio{i}", RATIOS)))
            heads.append(int(trial.suggest_categorical(f"layers.heads{i}", HEADS)))
        return AutoFormerArch(embed, tuple(ratios), tuple(heads))

    def to_params(self, arch: AutoFormerArch) -> dict[str, Any]:
        """The params :meth:`suggest` records for ``arch``."""
        arch = self._as_arch(arch)
        params: dict[str, Any] = {"embed.width": arch.embed, "body.depth": arch.depth}
        for i, (ratio, heads) in enumerate(zip(arch.ratios, arch.heads), start=1):
            params[f"layers.ratio{i}"] = ratio
            params[f"layers.heads{i}"] = heads
        return params

    def encode(self, arch: AutoFormerArch) -> str:
        """The canonical string, e.g. ``E192|R3.5,4,...|H3,4,...``."""
        return str(self._as_arch(arch))

    def decode(self, text: str) -> AutoFormerArch:
        """Parse the canonical string; raises :class:`ArchError` naming what is wrong."""
        if not isinstance(text, str) or not text.strip():
            raise ArchError(f"expected an {self.name} arch string like {_SHORT_EXAMPLE}; got {text!r}")
        match = re.fullmatch(r"E(\d+)\|R([\d.,]+)\|H([\d,]+)", text.strip())
        if match is None:
            raise ArchError(f"{text!r} is not an {self.name} arch string; expected e.g. {_SHORT_EXAMPLE}")
        embed, ratios, heads = match.groups()
        try:
            return AutoFormerArch(int(embed), tuple(map(float, ratios.split(","))), tuple(map(int, heads.split(","))))
        except ValueError as exc:  # ArchError, or a list item that is not a number
            raise ArchError(f"{text!r}: {exc}; expected e.g. {_SHORT_EXAMPLE}") from None

    def build(self, arch: AutoFormerArch, num_classes: int | None = None) -> FeatureNetwork:
        """The ViT (random init) for ``arch``."""
        return AutoFormerNetwork(
            self._as_arch(arch), num_classes=self._num_classes(num_classes), image_size=self.image_size
        )

    def count_params(self, arch: AutoFormerArch, num_classes: int | None = None) -> int:
        """Analytic parameter count (module docstring; equal to the built network's)."""
        arch = self._as_arch(arch)
        k, e = self._num_classes(num_classes), arch.embed
        tokens = 1 + (self.image_size // PATCH) ** 2
        total = 3 * PATCH * PATCH * e + e + e + tokens * e
        total += sum(block_params(e, arch.hidden(i)) for i in range(arch.depth))
        return total + 2 * e + e * k + k

    def count_flops(self, arch: AutoFormerArch, num_classes: int | None = None, image_size: int | None = None) -> int:
        """FLOPs per image, analytic, as :mod:`torch.utils.flop_counter` counts them (2 per
        multiply-add; convolutions and matrix products, attention's ``Q K^T`` and ``A V`` included)."""
        arch = self._as_arch(arch)
        k, e = self._num_classes(num_classes), arch.embed
        patches = ((image_size or self.image_size) // PATCH) ** 2
        t = patches + 1
        total = 2 * patches * 3 * PATCH * PATCH * e
        for i in range(arch.depth):
            total += 2 * t * (4 * e * e + 2 * e * arch.hidden(i)) + 4 * t * t * e
        return total + 2 * e * k

    def count_layers(self, arch: AutoFormerArch) -> int:
        """Patch conv + 4 linear layers per block + head."""
        return 4 * self._as_arch(arch).depth + 2

    def check(self, arch: AutoFormerArch, limits: Limits | None = None, num_classes: int | None = None) -> str | None:
        """Also rejects an arch of another space."""
        if not isinstance(arch, AutoFormerArch):
            return f"{arch!r} is not an {self.name} architecture (AutoFormerArch)"
        return super().check(arch, limits, num_classes)

    def smallest(self, num_classes: int | None = None) -> AutoFormerArch:
        """The fewest-parameter arch: width 192, 12 layers of MLP ratio 3.5 (heads add nothing)."""
        return AutoFormerArch(EMBED_DIMS[0], (RATIOS[0],) * DEPTHS[0], (HEADS[0],) * DEPTHS[0])

    def _as_arch(self, arch: object) -> AutoFormerArch:
        if not isinstance(arch, AutoFormerArch):
            raise ArchError(f"{arch!r} is not an {self.name} architecture; expected e.g. {_SHORT_EXAMPLE}")
        return arch
