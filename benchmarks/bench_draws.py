"""How much of a score's gap to a size count is noise: the Kendall tau of the mean of k draws.

A score is one draw: one probe batch, one initialisation of the student (and of a teacher at
random init). A search's pick averages several draws of its best students before it recommends
one (``--pick-repeats``), and ``--repeats K`` makes every trial the mean of K. This scores every
student of a ground truth and the search's reference sample with ``--draws`` repeats through the
search's own scorer, then ranks the students by the mean raw terms of their first k draws, k = 1, 2,
4, ..., against the reference sample's means of the same draws: exactly what a study with
``--repeats k`` ranks by. Beside it, the same draws averaged the other way (each draw's score
against that reference, then their mean). The tau of a single draw is shown as the mean and range over the draws;
``params`` and ``flops`` (no noise) are printed beside. Where the tau of the mean levels off below a count, more draws cannot close the gap.

    python benchmarks/bench_draws.py --space s0 --truth s0:cifar100-kd --teacher resnet110 --draws 16 \
        --data-dir benchmarks/.data/cifar-imagefolders/cifar100 --json benchmarks/results/draws-s0.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau

from diswot.pipeline import SearchConfig
from diswot.pipeline.assembly import ScoringSetup, draw_reference, make_scoring
from diswot.pipeline.config import DEFAULT_PROXY, DEFAULT_REFERENCE_SIZE
from diswot.pipeline.evaluation import ground_truth
from diswot.proxies import Reference, arch_flops
from diswot.spaces import get_space

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cross_ranking import BENCHES, imagefolder  # noqa: E402


def raw_draws(setup: ScoringSetup, archs: list[Any]) -> list[list[dict[str, float]]]:
    """Every architecture's raw terms under each draw (a list of draws per architecture)."""
    return [setup.scorer.raw(a) for a in archs]


def mean_terms(per_draw: list[dict[str, float]], k: int) -> dict[str, float]:
    return {t: sum(d[t] for d in per_draw[:k]) / k for t in per_draw[0]}


def scores_of_k(
    setup: ScoringSetup, students: list[list[dict[str, float]]], reference: list[list[dict[str, float]]], k: int
) -> np.ndarray:  # type: ignore[type-arg]
    """The students' scores as a study with ``--repeats k`` gives them: the mean raw terms of the
    first ``k`` draws, ranked against a reference sample whose terms are the same means."""
    proxy = setup.scorer.proxy
    if not proxy.reference_terms:
        return np.array([np.mean([d["score"] for d in draws[:k]]) for draws in students])
    names = [str(i) for i in range(len(reference))]
    means = [mean_terms(draws, k) for draws in reference]
    ref = Reference(tuple(names), {t: [m[t] for m in means] for t in means[0]})
    return np.array([proxy.combine(mean_terms(draws, k), ref) for draws in students], dtype=np.float64)


def scores_averaged_k(
    setup: ScoringSetup, students: list[list[dict[str, float]]], reference: list[list[dict[str, float]]], k: int
) -> np.ndarray:  # type: ignore[type-arg]
    """The other way to average k draws: each draw's score against the same reference sample (its
    terms the means of the k draws), then the mean of those k scores. For a score that ranks its
    terms against the sample (the default), this differs from :func:`scores_of_k`."""
    proxy = setup.scorer.proxy
    if not proxy.reference_terms:
        return scores_of_k(setup, students, reference, k)
    means = [mean_terms(draws, k) for draws in reference]
    ref = Reference(tuple(str(i) for i in range(len(reference))), {t: [m[t] for m in means] for t in means[0]})
    return np.array([np.mean([proxy.combine(d, ref) for d in draws[:k]]) for draws in students], dtype=np.float64)


def tau(x: np.ndarray, y: np.ndarray) -> float:
    return float(kendalltau(x, y)[0])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="s0")
    p.add_argument("--truth", default="s0:cifar100-kd")
    p.add_argument("--teacher", default="resnet110")
    p.add_argument("--proxy", default=DEFAULT_PROXY)
    p.add_argument("--draws", type=int, default=16)
    p.add_argument("--sample", type=int, default=None, help="a seeded sample of the ground truth")
    p.add_argument("--data-dir", type=Path, help="an ImageFolder of probe images (default: the stored CIFAR images)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    space = get_space(a.space)
    bench = next(b for b in BENCHES.values() if b.space == a.space)
    data_dir = a.data_dir or imagefolder(bench, Path(__file__).resolve().parent / ".data" / "cifar-imagefolders")
    config = SearchConfig(
        space=a.space,
        teacher=a.teacher,
        proxy=a.proxy,
        dataset="imagefolder",
        data_dir=str(data_dir),
        image_size=32,
        num_classes=bench.num_classes,
        repeats=a.draws,
        device="cpu",
    )
    truth = ground_truth(a.truth, space, a.sample, 0)
    acc = truth.accuracy
    setup = make_scoring(config)
    size = config.reference_size or DEFAULT_REFERENCE_SIZE  # as a search draws it
    sample = draw_reference(setup.space, setup.limits, setup.num_classes, size=size, seed=config.seed)
    reference = raw_draws(setup, sample)
    students = raw_draws(setup, list(truth.archs))
    params = np.array([space.count_params(x, bench.num_classes) for x in truth.archs], dtype=np.float64)
    flops = np.array([arch_flops(space, x, bench.num_classes, 32) for x in truth.archs], dtype=np.float64)
    # one draw, each on its own: its terms against a reference of that draw alone
    single = [
        tau(scores_of_k(setup, [x[d:] for x in students], [x[d:] for x in reference], 1), acc) for d in range(a.draws)
    ]
    print(f"{a.proxy} on {a.truth} ({len(acc)} students), teacher {a.teacher} at random init, {a.draws} draws")
    print(f"one draw: tau {np.mean(single):.3f} (min {min(single):.3f}, max {max(single):.3f})")
    ks = [k for k in (1, 2, 4, 8, 16, 32, 64) if k <= a.draws]
    of_mean = {k: tau(scores_of_k(setup, students, reference, k), acc) for k in ks}
    of_scores = {k: tau(scores_averaged_k(setup, students, reference, k), acc) for k in ks}
    for k, t in of_mean.items():
        print(
            f"mean of the first {k:>2} draws: tau {t:.3f} (as --repeats {k}); their scores averaged: {of_scores[k]:.3f}"
        )
    counts = {"params": tau(params, acc), "flops": tau(flops, acc)}
    print(f"params: tau {counts['params']:.3f}; flops: tau {counts['flops']:.3f}")
    if a.json:
        out = {
            "command": " ".join(["python", "benchmarks/bench_draws.py", *(argv or sys.argv[1:])]),
            "proxy": a.proxy,
            "truth": a.truth,
            "students": len(acc),
            "one_draw": single,
            "mean_of_first_k": {str(k): t for k, t in of_mean.items()},
            "scores_of_first_k_averaged": {str(k): t for k, t in of_scores.items()},
            "counts": counts,
        }
        a.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
