"""S2: NDS-style ResNet spaces for CIFAR and ImageNet (DisWOT supplementary B.3, Tables 10-14).

A stem conv + BN + ReLU (CIFAR: 3x3 stride 1; ImageNet: 7x7 stride 2, no max-pool), then up to
6 (CIFAR) / 4 (ImageNet) stages, each of ``depth`` residual blocks of one type ("basic" or
"bottleneck") with one kernel size in {3, 5, 7} and one width (a multiple of 8 in [8, 2048]); the
first block of a stage has the stage's stride (1 or 2). ImageNet may add a 1x1 conv + BN + ReLU
head (Table 14's ``Conv 1x1 512->2384``). Global average pooling and a linear classifier end it.

Blocks (convs are bias-free, padding ``k // 2``, so any stride pattern is shape-safe: a 1x1 map
stays 1x1):

- basic: kxk conv(stride)-BN-ReLU-kxk conv-BN, plus the shortcut, then ReLU;
- bottleneck: 1x1 conv to ``mid``-BN-ReLU, kxk conv(stride)-BN-ReLU, 1x1 conv to width-BN, plus
  the shortcut, then ReLU, with ``mid = max(8, 8 * round(width / 32))`` (Python's ``round``);
- shortcut: identity, or a 1x1 conv(stride) + BN when the stride is 2 or the width changes.

Params, suggested in this order: ``stem.width`` (8..256 step 8); for each stage i = 1..N
``stage{i}.depth`` (stage 1: 1..8, others 0..8; 0 = the stage is absent) and, only when the depth
is positive, ``stage{i}.type`` (basic/bottleneck), ``stage{i}.kernel`` (3/5/7), ``stage{i}.width``
(8..2048 step 8), ``stage{i}.stride`` (1/2); ImageNet only: ``head.width`` (0..4096 step 8, 0 = no
head conv). An arch keeps only the present stages, in order, so params that differ only in where
the absent stages are give the same arch; :meth:`~_S2Space.to_params` puts the present stages first.

String grammar (canonical, round-trips through encode/decode)::

    arch  := stem ("|" stage)+ ["|" head]
    stem  := "C" <stem width>
    stage := ("B" | "K") <kernel> "x" <width> "d" <depth> "s" <stride>     B = basic, K = bottleneck
    head  := "H" <head width>                                              (ImageNet; omitted if 0)

e.g. ``C96|B3x64d3s2|B3x128d2s2|B3x256d2s2|B3x512d2s2`` (Table 13) or
``C64|B3x64d2s2|B3x128d2s2|B3x256d2s2|B3x512d2s2|H2384`` (Table 14).

Layers (``count_layers``): the stem conv, the convs on the main path of every block (2 per basic,
3 per bottleneck), the head conv if any and the FC; shortcut convs are not counted. Table 13 has
exactly 20.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import optuna
import torch
from torch import nn

from ._base import ArchError, Limits, Space, register_space
from ._network import FeatureNetwork

__all__ = [
    "BLOCK_TYPES",
    "PAPER_ARCHS",
    "PaperArch",
    "S2Arch",
    "S2CifarSpace",
    "S2ImageNetSpace",
    "S2Network",
    "S2Stage",
    "bottleneck_mid_width",
]

BLOCK_TYPES: tuple[str, ...] = ("basic", "bottleneck")
KERNELS: tuple[int, ...] = (3, 5, 7)
STRIDES: tuple[int, ...] = (1, 2)
MIN_WIDTH, MAX_WIDTH, MAX_STEM, MAX_HEAD, MAX_DEPTH = 8, 2048, 256, 4096, 8
_LETTER = {"basic": "B", "bottleneck": "K"}
_STAGE_RE = re.compile(r"^([BK])(\d+)x(\d+)d(\d+)s(\d+)$")
_EXAMPLE = "C96|B3x64d3s2|B3x128d2s2|K5x256d2s2|B3x512d2s1"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _normalise_ints(obj: object, *names: str) -> None:
    """Turn integral values (e.g. numpy ints) of a frozen dataclass into plain ints."""
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            object.__setattr__(obj, name, int(value))


def _check_width(what: str, value: object, low: int, high: int) -> None:
    if not _is_int(value) or not low <= value <= high or value % 8:  # type: ignore[operator]
        raise ArchError(f"{what} must be a multiple of 8 in [{low}, {high}], got {value!r}")


def bottleneck_mid_width(width: int) -> int:
    """The inner width of a bottleneck block of output ``width``: ``max(8, 8 * round(width / 32))``."""
    return max(MIN_WIDTH, 8 * round(width / 4 / 8))


@dataclass(frozen=True)
class S2Stage:
    """One S2 stage: ``depth`` blocks of type ``block`` with a ``kernel`` conv and ``width`` channels."""

    block: str
    kernel: int
    width: int
    depth: int
    stride: int

    def __post_init__(self) -> None:
        _normalise_ints(self, "kernel", "width", "depth", "stride")
        if self.block not in BLOCK_TYPES:
            raise ArchError(f"stage block type must be one of {', '.join(BLOCK_TYPES)}, got {self.block!r}")
        if not _is_int(self.kernel) or self.kernel not in KERNELS:
            raise ArchError(f"stage kernel must be one of 3, 5, 7, got {self.kernel!r}")
        _check_width("stage width", self.width, MIN_WIDTH, MAX_WIDTH)
        if not _is_int(self.depth) or not 1 <= self.depth <= MAX_DEPTH:
            raise ArchError(
                f"stage depth must be an int in [1, {MAX_DEPTH}] (absent stages are left out), got {self.depth!r}"
            )
        if not _is_int(self.stride) or self.stride not in STRIDES:
            raise ArchError(f"stage stride must be 1 or 2, got {self.stride!r}")

    def __str__(self) -> str:
        return f"{_LETTER[self.block]}{self.kernel}x{self.width}d{self.depth}s{self.stride}"


@dataclass(frozen=True)
class S2Arch:
    """An S2 student: stem width, the present stages in order, and a head 1x1 conv width (0 = none)."""

    stem: int
    stages: tuple[S2Stage, ...]
    head: int = 0

    def __post_init__(self) -> None:
        _normalise_ints(self, "stem", "head")
        _check_width("stem width", self.stem, MIN_WIDTH, MAX_STEM)
        try:
            stages = tuple(self.stages)
        except TypeError:
            raise ArchError(f"stages must be a sequence of S2Stage, got {self.stages!r}") from None
        if not stages or not all(isinstance(s, S2Stage) for s in stages):
            raise ArchError(f"an S2 arch needs at least one stage, each an S2Stage; got {self.stages!r}")
        object.__setattr__(self, "stages", stages)
        if self.head != 0:
            _check_width("head width", self.head, MIN_WIDTH, MAX_HEAD)

    def __str__(self) -> str:
        parts = [f"C{self.stem}", *map(str, self.stages)]
        if self.head:
            parts.append(f"H{self.head}")
        return "|".join(parts)


class PaperArch(NamedTuple):
    """A searched architecture published in the DisWOT supplementary."""

    space: str
    arch: S2Arch
    source: str


def _basic(kernel: int, width: int, depth: int, stride: int) -> S2Stage:
    return S2Stage("basic", kernel, width, depth, stride)


#: the searched S2 architectures of the DisWOT supplementary (Tables 12-14)
PAPER_ARCHS: dict[str, PaperArch] = {
    "cifar": PaperArch(
        "s2-cifar",
        S2Arch(
            88,
            (
                _basic(7, 96, 3, 1),
                _basic(5, 192, 2, 2),
                _basic(5, 176, 2, 1),
                _basic(5, 168, 3, 2),
                _basic(3, 112, 3, 2),
                _basic(3, 512, 1, 1),
            ),
        ),
        "Table 12 (CIFAR-10/100)",
    ),
    "imagenet": PaperArch(
        "s2-imagenet",
        S2Arch(96, (_basic(3, 64, 3, 2), _basic(3, 128, 2, 2), _basic(3, 256, 2, 2), _basic(3, 512, 2, 2))),
        "Table 13 (ImageNet, under 13M parameters, 20 layers)",
    ),
    "imagenet-seg": PaperArch(
        "s2-imagenet",
        S2Arch(64, (_basic(3, 64, 2, 2), _basic(3, 128, 2, 2), _basic(3, 256, 2, 2), _basic(3, 512, 2, 2)), head=2384),
        "Table 14 (DisWOT-11.7M, searched for segmentation)",
    ),
}


# ----------------------------------------------------------------------------------------- network
def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), nn.BatchNorm2d(c_out)]


class _Block(nn.Module):
    def __init__(self, block: str, c_in: int, c_out: int, k: int, stride: int) -> None:
        super().__init__()
        if block == "basic":
            layers = [*_conv_bn(c_in, c_out, k, stride), nn.ReLU(inplace=True), *_conv_bn(c_out, c_out, k)]
        else:
            mid = bottleneck_mid_width(c_out)
            layers = [
                *_conv_bn(c_in, mid, 1), nn.ReLU(inplace=True),
                *_conv_bn(mid, mid, k, stride), nn.ReLU(inplace=True),
                *_conv_bn(mid, c_out, 1),
            ]  # fmt: skip
        self.body = nn.Sequential(*layers)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(*_conv_bn(c_in, c_out, 1, stride))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the module to ``x``."""
        out: torch.Tensor = self.relu(self.body(x) + self.shortcut(x))
        return out


class S2Network(FeatureNetwork):
    """The network of an :class:`S2Arch`; features are the last block's (or the head's) output."""

    def __init__(self, arch: S2Arch, *, stem_kernel: int, stem_stride: int, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, arch.stem, stem_kernel, stem_stride), nn.ReLU(inplace=True))
        stages: list[nn.Module] = []
        c = arch.stem
        for st in arch.stages:
            blocks = [
                _Block(st.block, c if j == 0 else st.width, st.width, st.kernel, st.stride if j == 0 else 1)
                for j in range(st.depth)
            ]
            stages.append(nn.Sequential(*blocks))
            c = st.width
        self.stages = nn.Sequential(*stages)
        self.head: nn.Module = nn.Identity()
        if arch.head:
            self.head = nn.Sequential(*_conv_bn(c, arch.head, 1), nn.ReLU(inplace=True))
            c = arch.head
        self.classifier = nn.Linear(c, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pre-pool feature map of ``x``."""
        out: torch.Tensor = self.head(self.stages(self.stem(x)))
        return out


def _conv_bn_params(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + 2 * c_out


def _block_params(block: str, c_in: int, c_out: int, k: int, stride: int) -> int:
    if block == "basic":
        total = _conv_bn_params(c_in, c_out, k) + _conv_bn_params(c_out, c_out, k)
    else:
        mid = bottleneck_mid_width(c_out)
        total = _conv_bn_params(c_in, mid, 1) + _conv_bn_params(mid, mid, k) + _conv_bn_params(mid, c_out, 1)
    if stride != 1 or c_in != c_out:
        total += _conv_bn_params(c_in, c_out, 1)
    return total


# ------------------------------------------------------------------------------------------- space
class _S2Space(Space[S2Arch]):
    """Shared S2 logic; subclasses fix the stem, the number of stages and whether a head exists."""

    num_stages: int = 6
    stem_kernel: int = 3
    stem_stride: int = 1
    has_head: bool = False

    def suggest(self, trial: optuna.trial.BaseTrial) -> S2Arch:
        """Suggest stem width, each stage (its other params only when its depth > 0), the head."""
        stem = int(trial.suggest_int("stem.width", MIN_WIDTH, MAX_STEM, step=8))
        stages: list[S2Stage] = []
        for i in range(1, self.num_stages + 1):
            depth = int(trial.suggest_int(f"stage{i}.depth", 1 if i == 1 else 0, MAX_DEPTH))
            if depth == 0:
                continue
            block = trial.suggest_categorical(f"stage{i}.type", BLOCK_TYPES)
            kernel = trial.suggest_categorical(f"stage{i}.kernel", KERNELS)
            width = int(trial.suggest_int(f"stage{i}.width", MIN_WIDTH, MAX_WIDTH, step=8))
            stride = trial.suggest_categorical(f"stage{i}.stride", STRIDES)
            stages.append(S2Stage(block, kernel, width, depth, stride))
        head = int(trial.suggest_int("head.width", 0, MAX_HEAD, step=8)) if self.has_head else 0
        return S2Arch(stem, tuple(stages), head)

    def to_params(self, arch: S2Arch) -> dict[str, Any]:
        """The params of ``arch`` with its stages as stages 1..k and depth 0 for the rest."""
        arch = self._as_arch(arch)
        params: dict[str, Any] = {"stem.width": arch.stem}
        for i in range(1, self.num_stages + 1):
            if i > len(arch.stages):
                params[f"stage{i}.depth"] = 0
                continue
            st = arch.stages[i - 1]
            params[f"stage{i}.depth"] = st.depth
            params[f"stage{i}.type"] = st.block
            params[f"stage{i}.kernel"] = st.kernel
            params[f"stage{i}.width"] = st.width
            params[f"stage{i}.stride"] = st.stride
        if self.has_head:
            params["head.width"] = arch.head
        return params

    def encode(self, arch: S2Arch) -> str:
        """The canonical string, e.g. ``C88|B7x96d3s1|K5x192d2s2`` (grammar in the module doc)."""
        return str(self._as_arch(arch))

    def decode(self, text: str) -> S2Arch:
        """Parse the canonical string; raises :class:`ArchError` naming the bad token."""
        if not isinstance(text, str) or not text.strip():
            raise ArchError(f"expected an {self.name} arch string like {self._example()}; got {text!r}")
        tokens = text.strip().split("|")
        stem_tok, rest = tokens[0], tokens[1:]
        if not re.fullmatch(r"C\d+", stem_tok):
            raise ArchError(f"{text!r}: bad stem token {stem_tok!r}; expected C<width>, e.g. C64, in {self._example()}")
        head = 0
        if rest and rest[-1].startswith("H"):
            head_tok = rest.pop()
            if not self.has_head:
                raise ArchError(f"{text!r}: {self.name} has no head conv, remove the token {head_tok!r}")
            if not re.fullmatch(r"H\d+", head_tok) or int(head_tok[1:]) == 0:
                raise ArchError(
                    f"{text!r}: bad head token {head_tok!r}; expected H<width> with a positive width "
                    "(omit it for no head)"
                )
            head = int(head_tok[1:])
        if not rest:
            raise ArchError(
                f"{text!r} has no stage; expected at least one stage token like B3x64d2s1: {self._example()}"
            )
        stages: list[S2Stage] = []
        for tok in rest:
            match = _STAGE_RE.match(tok)
            if match is None:
                raise ArchError(
                    f"{text!r}: bad stage token {tok!r}; expected <B|K><kernel>x<width>d<depth>s<stride> "
                    f"(B = basic, K = bottleneck), e.g. B3x64d2s1"
                )
            letter, kernel, width, depth, stride = match.groups()
            block = "basic" if letter == "B" else "bottleneck"
            try:
                stages.append(S2Stage(block, int(kernel), int(width), int(depth), int(stride)))
            except ArchError as exc:
                raise ArchError(f"{text!r}: stage token {tok!r}: {exc}") from None
        try:
            arch = S2Arch(int(stem_tok[1:]), tuple(stages), head)
        except ArchError as exc:
            raise ArchError(f"{text!r}: {exc}") from None
        reason = self._structure_error(arch)
        if reason is not None:
            raise ArchError(f"{text!r}: {reason}")
        return arch

    def build(self, arch: S2Arch, num_classes: int | None = None) -> FeatureNetwork:
        """The S2 network (random init) for ``arch``."""
        arch = self._as_arch(arch)
        return S2Network(
            arch, stem_kernel=self.stem_kernel, stem_stride=self.stem_stride, num_classes=self._num_classes(num_classes)
        )

    def count_params(self, arch: S2Arch, num_classes: int | None = None) -> int:
        """Analytic parameter count (equal to the built network's)."""
        arch = self._as_arch(arch)
        k = self._num_classes(num_classes)
        total = _conv_bn_params(3, arch.stem, self.stem_kernel)
        c = arch.stem
        for st in arch.stages:
            total += _block_params(st.block, c, st.width, st.kernel, st.stride)
            total += (st.depth - 1) * _block_params(st.block, st.width, st.width, st.kernel, 1)
            c = st.width
        if arch.head:
            total += _conv_bn_params(c, arch.head, 1)
            c = arch.head
        return total + c * k + k

    def count_layers(self, arch: S2Arch) -> int:
        """Stem conv + main-path convs (2 per basic, 3 per bottleneck block) + head conv + FC."""
        arch = self._as_arch(arch)
        blocks = sum(st.depth * (2 if st.block == "basic" else 3) for st in arch.stages)
        return 1 + blocks + (1 if arch.head else 0) + 1

    def check(self, arch: S2Arch, limits: Limits | None = None, num_classes: int | None = None) -> str | None:
        """Also rejects archs with too many stages or a head the space does not have."""
        reason = self._structure_error(arch)
        return reason if reason is not None else super().check(arch, limits, num_classes)

    def smallest(self, num_classes: int | None = None) -> S2Arch:
        """The fewest-parameter arch: stem 8, one depth-1 stage of width 8, kernel 3, stride 1."""
        candidates = [S2Arch(MIN_WIDTH, (S2Stage(b, 3, MIN_WIDTH, 1, 1),)) for b in BLOCK_TYPES]
        return min(candidates, key=lambda a: self.count_params(a, num_classes))

    def _structure_error(self, arch: object) -> str | None:
        if not isinstance(arch, S2Arch):
            return f"{arch!r} is not an S2 architecture (S2Arch)"
        if len(arch.stages) > self.num_stages:
            return f"{len(arch.stages)} stages exceed the {self.num_stages} of {self.name}"
        if arch.head and not self.has_head:
            return f"{self.name} has no head conv, but the arch has one of width {arch.head}"
        return None

    def _as_arch(self, arch: object) -> S2Arch:
        reason = self._structure_error(arch)
        if reason is not None:
            raise ArchError(f"{reason}; expected e.g. {self._example()}")
        return arch  # type: ignore[return-value]

    def _example(self) -> str:
        return _EXAMPLE + ("|H1024" if self.has_head else "")


@register_space
class S2CifarSpace(_S2Space):
    """S2 for CIFAR (Table 10): 3x3 stride-1 stem, up to 6 stages, 32x32 inputs, 100 classes."""

    name = "s2-cifar"
    image_size = 32
    default_num_classes = 100
    default_limits = Limits()
    num_stages = 6
    stem_kernel = 3
    stem_stride = 1
    has_head = False


@register_space
class S2ImageNetSpace(_S2Space):
    """S2 for ImageNet (Table 11): 7x7 stride-2 stem, 4 stages, optional head conv, 224x224 inputs.

    Default limits are the paper's (B.3): at most 13M parameters and 20 layers.
    """

    name = "s2-imagenet"
    image_size = 224
    default_num_classes = 1000
    default_limits = Limits(max_params=13_000_000, max_layers=20)
    num_stages = 4
    stem_kernel = 7
    stem_stride = 2
    has_head = True
