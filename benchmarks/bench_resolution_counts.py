"""Size counts between the parameters and the FLOPs: how much each benchmark rewards resolution.

For every Conv2d and Linear layer l of a student, p_l is its weight count and a_l the area of its
output map (1 for a linear layer). The count C_beta = sum_l p_l * a_l ** beta is the parameter
count of those layers at beta = 0 and half their FLOPs at beta = 1 (a layer's FLOPs are
2 * p_l * a_l, grouped convolutions included); beta = 0.5 weighs each layer by the geometric mean
of its parameters and FLOPs. Prints the Kendall tau of each C_beta against each development
benchmark's accuracies (the same students as ``bench_cross_ranking.py``: all 64 of S0 distilled
from ResNet-110, 500 seeded cells of NAS-Bench-201 and of NAS-Bench-Macro), beside ``params`` and
``flops`` as the protocol counts them. No forward pass of a batch: one image of the input size.

``--cache BENCH=FILE`` (``bench_cross_ranking.py``'s raw-term caches) adds, for that benchmark, the
Kendall tau of each C_beta against the teacher's semantic distance M_s (sign turned, higher is
closer), on the benchmark's students and on the search's reference sample (64, seed 0): whether the
teacher term could choose beta at search time.

    python benchmarks/bench_resolution_counts.py --json benchmarks/results/resolution-counts.json \
        --cache s0=benchmarks/.data/cross-cache-s0.jsonl nb201=benchmarks/.data/cross-cache-nb201.jsonl \
        macro=benchmarks/.data/cross-cache.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from diswot.pipeline.assembly import draw_reference
from diswot.pipeline.benchmark_truth import benchmark_truth
from diswot.proxies._flops import FlopHooks
from diswot.spaces import Limits, Space, get_space

#: bench -> (ground truth, classes, sample)
BENCHES: dict[str, tuple[str, int, int | None]] = {
    "s0": ("s0:cifar100-kd", 100, None),
    "nb201": ("nb201:cifar100", 100, 500),
    "macro": ("macro:cifar10", 10, 500),
}
BETAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def layer_sizes(net: torch.nn.Module, image_size: int = 32) -> list[tuple[int, int]]:
    """(weight count, output area) of every Conv2d and Linear call of one forward pass."""
    rows: list[tuple[int, int]] = []

    def keep(module: torch.nn.Module, _args: Any, out: torch.Tensor) -> None:
        area = out.shape[-2] * out.shape[-1] if isinstance(module, torch.nn.Conv2d) else out.numel() // out.shape[-1]
        rows.append((module.weight.numel(), area))

    handles = [
        m.register_forward_hook(keep) for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    try:
        with torch.inference_mode():
            net(torch.zeros(1, 3, image_size, image_size))
    finally:
        for h in handles:
            h.remove()
    return rows


def resolution_count(rows: list[tuple[int, int]], beta: float) -> float:
    """C_beta = sum over layers of p_l * a_l ** beta."""
    return float(sum(p * a**beta for p, a in rows))


def count_columns(
    space: Space, archs: Sequence[Hashable], classes: int, betas: tuple[float, ...]
) -> dict[str, list[float]]:
    """``params``, ``flops`` and every C_beta of each architecture."""
    columns: dict[str, list[float]] = {"params": [], "flops": [], **{f"C_{b:g}": [] for b in betas}}
    for arch in archs:
        net = space.build(arch, num_classes=classes)
        with FlopHooks(net) as hooks:
            rows = layer_sizes(net)
        columns["params"].append(sum(p.numel() for p in net.parameters()))
        columns["flops"].append(hooks.per_image)
        for b in betas:
            columns[f"C_{b:g}"].append(resolution_count(rows, b))
    return columns


def _taus(columns: dict[str, list[float]], target: Sequence[float]) -> dict[str, float]:
    return {name: float(stats.kendalltau(values, target)[0]) for name, values in columns.items()}


def cached_closeness(path: Path, bench: str) -> dict[str, float]:
    """-M_s of every architecture the raw-term cache holds for ``bench`` (``diswot-flow``'s terms)."""
    out = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row["bench"] == bench and row["proxy"] == "diswot-flow" and row["terms"]:
            out[row["arch"]] = -float(row["terms"]["semantic"])
    return out


def bench_counts(bench: str, betas: tuple[float, ...], cache: Path | None = None) -> dict[str, dict[str, float]]:
    """Kendall tau of every C_beta, ``params`` and ``flops`` against ``bench``'s accuracies; with a
    cache, also against -M_s on the same students and on the reference sample."""
    spec, classes, sample = BENCHES[bench]
    space = get_space(bench)
    truth = benchmark_truth(spec, space, sample=sample, seed=0)
    columns = count_columns(space, truth.archs, classes, betas)
    out = {"accuracy": _taus(columns, np.asarray(truth.accuracy, dtype=float))}
    if cache is not None:
        closeness = cached_closeness(cache, bench)
        for label, archs in (
            ("M_s, students", list(truth.archs)),
            ("M_s, reference", draw_reference(space, Limits(), classes, size=64, seed=0)),
        ):
            kept = [a for a in archs if space.encode(a) in closeness]
            target = [closeness[space.encode(a)] for a in kept]
            out[label] = _taus(count_columns(space, kept, classes, betas), target)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benches", default="s0,nb201,macro")
    p.add_argument("--betas", default=",".join(f"{b:g}" for b in BETAS))
    p.add_argument("--cache", nargs="*", default=[], help="BENCH=FILE: raw-term caches of bench_cross_ranking.py")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    betas = tuple(float(b) for b in args.betas.split(","))
    caches = {k: Path(v) for k, v in (item.split("=", 1) for item in args.cache)}
    result = {bench: bench_counts(bench, betas, caches.get(bench)) for bench in args.benches.split(",")}
    columns = [(bench, target) for bench, by in result.items() for target in by]
    print(f"{'count':10s}" + "".join(f"{f'{bench}: {target}':>26s}" for bench, target in columns))
    for name in result[columns[0][0]]["accuracy"]:
        print(f"{name:10s}" + "".join(f"{result[bench][target][name]:26.3f}" for bench, target in columns))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"betas": betas, "kendall": result}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
