"""S1: the NAS-Bench-201 cell space (Dong & Yang, ICLR 2020; DisWOT supplementary B.2).

A cell is a 4-node DAG; node ``j`` is the sum of ``op_{j<-i}(node_i)`` over ``i < j`` and the
cell's output is node 3. Each of the 6 edges takes one of ``OPS``, so the space has 5^6 = 15,625
cells. The arch is the 6 ops in NAS-Bench-201 string order ``(1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2)``,
written as ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``; the params are categoricals named
``cell.1<-0`` ... ``cell.3<-2`` with the choices in ``OPS`` order.

The macro skeleton is the benchmark's (C = 16, N = 5): stem conv3x3 + BN; 5 cells at C; a residual
reduction block to 2C; 5 cells at 2C; a reduction block to 4C; 5 cells at 4C; BN + ReLU; global
pool; classifier. The pre-pool feature map always has 64 channels.

``count_layers`` counts the weighted layers (convs and the FC) on the longest input-to-output path:
the stem conv, 15 times the largest number of convs on a path from node 0 to node 3 through
non-``none`` edges, two convs per reduction block (its main branch) and the classifier.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import optuna
import torch
from torch import nn

from ._base import ArchError, Limits, Space, register_space
from ._network import FeatureNetwork

__all__ = ["EDGES", "NB201Arch", "NB201Network", "NB201Space", "OPS", "naslib_to_nb201", "nb201_to_naslib"]

#: the candidate ops, in the order of the params' choices
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: the 6 edges ``(to, from)`` in NAS-Bench-201 string order
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
_PARAMS: tuple[str, ...] = tuple(f"cell.{j}<-{i}" for j, i in EDGES)
_CONV_K = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
#: NASLib's op ids (naslib/search_spaces/nasbench201/conversions.py)
_NASLIB_OPS: tuple[str, ...] = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
#: NASLib's tuple is (e12, e13, e14, e23, e24, e34) over nodes 1..4; position of each NB201 edge in it
_NASLIB_POS: tuple[int, ...] = (0, 1, 3, 2, 4, 5)
_EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
_C, _N = 16, 5
_NODE = re.compile(r"^([a-z0-9_]+)~(\d+)$")


@dataclass(frozen=True)
class NB201Arch:
    """A NAS-Bench-201 cell: 6 op names in string order (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2)."""

    ops: tuple[str, str, str, str, str, str]

    def __post_init__(self) -> None:
        try:
            ops = tuple(self.ops)
        except TypeError:
            ops = ()
        if len(ops) != 6:
            raise ArchError(
                f"an NB201 cell has 6 edge ops in the order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2; got {self.ops!r}"
            )
        bad = [op for op in ops if op not in OPS]
        if bad:
            raise ArchError(f"unknown NB201 op(s) {', '.join(map(repr, bad))}; valid: {', '.join(OPS)}")
        object.__setattr__(self, "ops", ops)

    def __str__(self) -> str:
        nodes = []
        for j in (1, 2, 3):
            nodes.append("|" + "|".join(f"{op}~{i}" for (to, i), op in zip(EDGES, self.ops) if to == j) + "|")
        return "+".join(nodes)

    def op(self, to: int, src: int) -> str:
        """The op on edge ``src -> to``."""
        return self.ops[EDGES.index((to, src))]

    def is_connected(self) -> bool:
        """Whether node 3 is reachable from node 0 through non-``none`` edges."""
        return self.longest_conv_path() is not None

    def longest_conv_path(self) -> int | None:
        """Most convs on a non-``none`` path from node 0 to node 3; ``None`` when there is no path."""
        best: list[int | None] = [0, None, None, None]
        for (to, src), op in zip(EDGES, self.ops):  # edges are in topological order of ``to``
            if op == "none" or best[src] is None:
                continue
            length = best[src] + (op in _CONV_K)  # type: ignore[operator]
            if best[to] is None or length > best[to]:  # type: ignore[operator]
                best[to] = length
        return best[3]

    def live_edges(self) -> tuple[bool, ...]:
        """Per edge: whether it lies on a non-``none`` path from node 0 to node 3 (and is not ``none``)."""
        fed = {0}  # nodes that receive the input
        for to in (1, 2, 3):
            if any(op != "none" and src in fed for (t, src), op in zip(EDGES, self.ops) if t == to):
                fed.add(to)
        feeding = {3}  # nodes whose value reaches the output
        for src in (2, 1, 0):
            if any(op != "none" and to in feeding for (to, s), op in zip(EDGES, self.ops) if s == src):
                feeding.add(src)
        return tuple(op != "none" and src in fed and to in feeding for (to, src), op in zip(EDGES, self.ops))


def naslib_to_nb201(op_tuple: Sequence[int]) -> NB201Arch:
    """Convert NASLib's op tuple ``(e12, e13, e14, e23, e24, e34)`` (ids 0=skip_connect, 1=none,
    2=nor_conv_3x3, 3=nor_conv_1x1, 4=avg_pool_3x3) to an :class:`NB201Arch`."""
    ids = tuple(op_tuple)
    if len(ids) != 6 or any(isinstance(i, bool) or i not in range(5) for i in ids):
        raise ArchError(f"a NASLib NB201 op tuple has 6 ids in 0..4, e.g. (0, 2, 3, 2, 3, 1); got {op_tuple!r}")
    return NB201Arch(tuple(_NASLIB_OPS[ids[p]] for p in _NASLIB_POS))  # type: ignore[arg-type]


def nb201_to_naslib(arch: NB201Arch) -> tuple[int, ...]:
    """The inverse of :func:`naslib_to_nb201`: NASLib's ``(e12, e13, e14, e23, e24, e34)`` op ids."""
    out = [0] * 6
    for k, p in enumerate(_NASLIB_POS):
        out[p] = _NASLIB_OPS.index(arch.ops[k])
    return tuple(out)


class _ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, k, stride, k // 2, bias=False), nn.BatchNorm2d(c_out)
        )


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the module to ``x``."""
        return x.mul(0.0)


def _make_op(op: str, c: int) -> nn.Module:
    if op == "none":
        return _Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    return _ReLUConvBN(c, c, _CONV_K[op], 1)


class _Cell(nn.Module):
    def __init__(self, arch: NB201Arch, c: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(_make_op(op, c) for op in arch.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the module to ``x``."""
        nodes = [x]
        k = 0
        for j in (1, 2, 3):
            total = self.edges[k](nodes[0])
            for i in range(1, j):
                total = total + self.edges[k + i](nodes[i])
            nodes.append(total)
            k += j
        return nodes[3]


class _Reduction(nn.Module):
    """NAS-Bench-201's residual reduction block: two ReLU-conv-BN (the first with stride 2)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = _ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = _ReLUConvBN(c_out, c_out, 3, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2, 0), nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the module to ``x``."""
        out: torch.Tensor = self.shortcut(x) + self.conv_b(self.conv_a(x))
        return out


class NB201Network(FeatureNetwork):
    """The NAS-Bench-201 macro skeleton around one cell; features end with BN + ReLU (64 ch)."""

    def __init__(self, arch: NB201Arch, *, num_classes: int, channels: int = _C, cells_per_stage: int = _N) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels))
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage:
                layers.append(_Reduction(c, 2 * c))
                c *= 2
            layers.extend(_Cell(arch, c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(c, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pre-pool feature map of ``x``."""
        out: torch.Tensor = self.lastact(self.cells(self.stem(x)))
        return out


def _conv_bn(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + 2 * c_out


@register_space
class NB201Space(Space[NB201Arch]):
    """The 15,625 NAS-Bench-201 cells in the benchmark's C=16, N=5 skeleton (CIFAR, 32x32)."""

    name = "nb201"
    image_size = 32
    default_num_classes = 100
    default_limits = Limits()

    @property
    def fixed_feature_width(self) -> int | None:
        """Every NB201 network ends with 4C = 64 channels."""
        return 4 * _C

    def suggest(self, trial: optuna.trial.BaseTrial) -> NB201Arch:
        """Suggest the 6 edge ops as categoricals ``cell.<to><-<from>``."""
        return NB201Arch(tuple(trial.suggest_categorical(name, OPS) for name in _PARAMS))  # type: ignore[arg-type]

    def to_params(self, arch: NB201Arch) -> dict[str, Any]:
        """``{"cell.1<-0": op, ..., "cell.3<-2": op}``."""
        return dict(zip(_PARAMS, _as_arch(arch).ops))

    def encode(self, arch: NB201Arch) -> str:
        """The NAS-Bench-201 string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
        return str(_as_arch(arch))

    def decode(self, text: str) -> NB201Arch:
        """Parse a NAS-Bench-201 string; raises :class:`ArchError` naming the bad part."""
        if not isinstance(text, str):
            raise ArchError(f"an NB201 arch string is a str like {_EXAMPLE}; got {text!r}")
        groups = text.strip().split("+")
        if len(groups) != 3:
            raise ArchError(f"{text!r} has {len(groups)} node group(s) separated by '+', expected 3: {_EXAMPLE}")
        ops: list[str] = []
        for j, group in enumerate(groups, start=1):
            if not (group.startswith("|") and group.endswith("|") and len(group) > 1):
                raise ArchError(f"{text!r}: node {j} group {group!r} must be wrapped in '|', e.g. {_EXAMPLE}")
            tokens = group[1:-1].split("|")
            if len(tokens) != j:
                raise ArchError(
                    f"{text!r}: node {j} needs {j} input edge(s), found {len(tokens)} in {group!r}; "
                    f"expected form {_EXAMPLE}"
                )
            for i, token in enumerate(tokens):
                match = _NODE.match(token)
                if match is None or int(match.group(2)) != i:
                    raise ArchError(f"{text!r}: node {j} edge {token!r} should read 'op~{i}'; expected form {_EXAMPLE}")
                if match.group(1) not in OPS:
                    raise ArchError(f"{text!r}: unknown op {match.group(1)!r}; valid: {', '.join(OPS)}")
                ops.append(match.group(1))
        return NB201Arch(tuple(ops))  # type: ignore[arg-type]

    def build(self, arch: NB201Arch, num_classes: int | None = None) -> FeatureNetwork:
        """The C=16, N=5 NAS-Bench-201 network with ``arch`` in every cell."""
        return NB201Network(_as_arch(arch), num_classes=self._num_classes(num_classes))

    def count_params(self, arch: NB201Arch, num_classes: int | None = None) -> int:
        """Analytic parameter count (equal to the built network's and to NAS-Bench-201's)."""
        ops = _as_arch(arch).ops
        k = self._num_classes(num_classes)
        total = _conv_bn(3, _C, 3)
        c = _C
        for stage in range(3):
            if stage:
                total += _conv_bn(c, 2 * c, 3) + _conv_bn(2 * c, 2 * c, 3) + c * 2 * c
                c *= 2
            total += _N * sum(_conv_bn(c, c, _CONV_K[op]) for op in ops if op in _CONV_K)
        return total + 2 * c + c * k + k

    def count_layers(self, arch: NB201Arch) -> int:
        """Convs + FC on the longest path: ``1 + 15 * L + 4 + 1``, L = most convs on a cell path."""
        longest = _as_arch(arch).longest_conv_path() or 0
        return 1 + 3 * _N * longest + 2 * 2 + 1

    def check(self, arch: NB201Arch, limits: Limits | None = None, num_classes: int | None = None) -> str | None:
        """Also rejects cells whose output is not connected to their input (a constant network)."""
        if not isinstance(arch, NB201Arch):
            return f"{arch!r} is not an NB201 architecture (NB201Arch)"
        if not arch.is_connected():
            return "the cell has no path from the input to the output: every path has a `none` edge"
        return super().check(arch, limits, num_classes)

    def representative(self, arch: NB201Arch) -> NB201Arch:
        """``arch`` with ``none`` on every dead edge (off all input-to-output paths) that has no
        parameters: a dead ``skip_connect`` or ``avg_pool_3x3`` adds zeros or an unused value, so
        the cells agree in every output and parameter. Dead convolutions are kept (they count)."""
        live = _as_arch(arch).live_edges()
        return NB201Arch(
            tuple(  # type: ignore[arg-type]
                op if alive or op in _CONV_K else "none" for op, alive in zip(arch.ops, live)
            )
        )

    def enumerate(self) -> Iterator[NB201Arch]:
        """All 15,625 cells (``OPS`` order, last edge fastest)."""
        for ops in itertools.product(OPS, repeat=6):
            yield NB201Arch(ops)  # type: ignore[arg-type]

    def smallest(self, num_classes: int | None = None) -> NB201Arch:
        """A connected cell with the fewest parameters (a cell without convs)."""
        valid = (a for a in self.enumerate() if a.is_connected())
        return min(valid, key=lambda a: self.count_params(a, num_classes))


def _as_arch(arch: object) -> NB201Arch:
    if not isinstance(arch, NB201Arch):
        raise ArchError(
            f"{arch!r} is not an NB201 architecture; expected NB201Arch((op, ...)) or a string like {_EXAMPLE}"
        )
    return arch
