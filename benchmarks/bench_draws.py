"""How much of a score's gap to a size count is noise: the Kendall tau of k draws averaged.

A score is one draw: one probe batch, one initialisation of the student (and of a teacher at
random init). A search's pick averages several draws of its best students before it recommends
one (``--pick-repeats``), and ``--repeats K`` makes every trial the mean of K. This scores every
student of a ground truth and the search's reference sample with ``--draws`` draws through the
search's own scorer and ranks the students with their first k draws, k = 1, 2, 4, ..., three ways:
the mean raw terms against a reference sample of the same means (how ``--repeats k`` scored
before); each draw's score against that reference, then their mean (``--repeats k`` now); the mean
raw terms against the reference of one draw (the pick, ``--pick-repeats k``, in a study of one
repeat); and each draw's score against that reference, then their mean (the pick's alternative). The tau of a single draw is shown as the mean and range over the draws;
``params`` and ``flops`` (no noise) are printed beside. Where the tau levels off below a count, more
draws cannot close the gap. ``--save-draws`` keeps every draw's raw terms (for ``--load-draws`` and
``bench_draws_grid.py``).

    python benchmarks/bench_draws.py --space s0 --truth s0:cifar100-kd --teacher resnet110 --draws 16 \
        --save-draws benchmarks/.data/draws/s0.json
    python benchmarks/bench_draws.py --load-draws benchmarks/.data/draws/s0.json --json benchmarks/results/draws-s0.json
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
from diswot.pipeline._choices import DEFAULT_INIT_DRAW, INIT_DRAWS
from diswot.pipeline.config import DEFAULT_PROXY, DEFAULT_REFERENCE_SIZE
from diswot.pipeline.evaluation import ground_truth
from diswot.proxies import Proxy, Reference, arch_flops, get_proxy
from diswot.spaces import get_space

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cross_ranking import BENCHES, imagefolder  # noqa: E402


def raw_draws(setup: ScoringSetup, archs: list[Any]) -> list[list[dict[str, float]]]:
    """Every architecture's raw terms under each draw (a list of draws per architecture)."""
    return [setup.scorer.raw(a) for a in archs]


Draws = list[list[dict[str, float]]]


def mean_terms(per_draw: list[dict[str, float]], k: int) -> dict[str, float]:
    return {t: sum(d[t] for d in per_draw[:k]) / k for t in per_draw[0]}


def reference_of(reference: Draws, k: int) -> Reference:
    """The reference sample as a study with ``--repeats k`` holds it: the mean terms of its first k draws."""
    means = [mean_terms(draws, k) for draws in reference]
    return Reference(tuple(str(i) for i in range(len(reference))), {t: [m[t] for m in means] for t in means[0]})


def scores_of_k(proxy: Proxy, students: Draws, reference: Draws, k: int) -> np.ndarray:  # type: ignore[type-arg]
    """The students' scores from the mean raw terms of their first ``k`` draws, ranked against a
    reference sample whose terms are the same means (how the terms of k draws were averaged before)."""
    if not proxy.reference_terms:
        return np.array([np.mean([d["score"] for d in draws[:k]]) for draws in students])
    ref = reference_of(reference, k)
    return np.array([proxy.combine(mean_terms(draws, k), ref) for draws in students], dtype=np.float64)


def scores_averaged_k(proxy: Proxy, students: Draws, reference: Draws, k: int) -> np.ndarray:  # type: ignore[type-arg]
    """The students' scores as a study with ``--repeats k`` gives them: each draw's score against the
    reference sample (its terms the means of the k draws), then the mean of those k scores."""
    if not proxy.reference_terms:
        return scores_of_k(proxy, students, reference, k)
    ref = reference_of(reference, k)
    return np.array([np.mean([proxy.combine(d, ref) for d in draws[:k]]) for draws in students], dtype=np.float64)


def scores_of_the_pick(proxy: Proxy, students: Draws, reference: Draws, k: int) -> np.ndarray:  # type: ignore[type-arg]
    """The pick's scores with ``--pick-repeats k`` in a study of one repeat: the mean raw terms of
    the k draws, ranked once against the study's reference sample (one draw)."""
    if not proxy.reference_terms:
        return scores_of_k(proxy, students, reference, k)
    ref = reference_of(reference, 1)
    return np.array([proxy.combine(mean_terms(draws, k), ref) for draws in students], dtype=np.float64)


def scores_averaged_one_draw(proxy: Proxy, students: Draws, reference: Draws, k: int) -> np.ndarray:  # type: ignore[type-arg]
    """The pick's alternative: each of the k draws' scores against the study's reference sample
    (one draw), then their mean."""
    if not proxy.reference_terms:
        return scores_of_k(proxy, students, reference, k)
    ref = reference_of(reference, 1)
    return np.array([np.mean([proxy.combine(d, ref) for d in draws[:k]]) for draws in students], dtype=np.float64)


def tau(x: np.ndarray, y: np.ndarray) -> float:  # type: ignore[type-arg]
    return float(kendalltau(x, y)[0])


def analyse(proxy: Proxy, saved: dict[str, Any]) -> dict[str, Any]:
    """Every figure of the report from the saved draws (see ``--save-draws``)."""
    students, reference, acc = saved["students"], saved["reference"], np.asarray(saved["accuracy"])
    n = len(students[0])
    single = [tau(scores_of_k(proxy, [x[d:] for x in students], [x[d:] for x in reference], 1), acc) for d in range(n)]
    ks = [k for k in (1, 2, 4, 8, 16, 32, 64) if k <= n]
    return {
        "one_draw": single,
        "mean_of_first_k": {str(k): tau(scores_of_k(proxy, students, reference, k), acc) for k in ks},
        "scores_of_first_k_averaged": {str(k): tau(scores_averaged_k(proxy, students, reference, k), acc) for k in ks},
        "the_pick": {str(k): tau(scores_of_the_pick(proxy, students, reference, k), acc) for k in ks},
        "the_pick_scores_averaged": {
            str(k): tau(scores_averaged_one_draw(proxy, students, reference, k), acc) for k in ks
        },
        "counts": {"params": tau(np.asarray(saved["params"]), acc), "flops": tau(np.asarray(saved["flops"]), acc)},
    }


def score_draws(a: argparse.Namespace) -> dict[str, Any]:
    """Score every student of the ground truth and the reference sample with ``--draws`` draws."""
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
        init_draw=a.init_draw,
        device="cpu",
    )
    truth = ground_truth(a.truth, space, a.sample, 0)
    setup = make_scoring(config)
    size = config.reference_size or DEFAULT_REFERENCE_SIZE  # as a search draws it
    sample = draw_reference(setup.space, setup.limits, setup.num_classes, size=size, seed=config.seed)
    return {
        "truth": a.truth,
        "teacher": a.teacher,
        "proxy": a.proxy,
        "init_draw": a.init_draw,
        "names": list(truth.names),
        "accuracy": [float(x) for x in truth.accuracy],
        "params": [float(space.count_params(x, bench.num_classes)) for x in truth.archs],
        "flops": [float(arch_flops(space, x, bench.num_classes, 32)) for x in truth.archs],
        "students": raw_draws(setup, list(truth.archs)),
        "reference": raw_draws(setup, sample),
    }


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
    p.add_argument("--save-draws", type=Path, help="also write every draw's raw terms here (JSON)")
    p.add_argument("--load-draws", type=Path, help="score nothing: report the draws saved by --save-draws")
    p.add_argument(
        "--init-draw",
        choices=INIT_DRAWS,
        default=DEFAULT_INIT_DRAW,
        help="layer: each layer's init from its own seeded generator (common random numbers); stream: one generator",
    )
    a = p.parse_args(argv)
    saved = json.loads(a.load_draws.read_text()) if a.load_draws else score_draws(a)
    if a.save_draws:
        a.save_draws.parent.mkdir(parents=True, exist_ok=True)
        a.save_draws.write_text(json.dumps(saved) + "\n")
    proxy = get_proxy(saved["proxy"])
    out = analyse(proxy, saved)
    single, n = out["one_draw"], len(out["one_draw"])
    print(
        f"{saved['proxy']} on {saved['truth']} ({len(saved['accuracy'])} students), teacher {saved['teacher']} at random init, {n} draws"
    )
    print(
        f"one draw (init drawn by {saved.get('init_draw', 'stream')}): tau {np.mean(single):.3f} "
        f"(sd {np.std(single):.3f}, min {min(single):.3f}, max {max(single):.3f})"
    )
    for k, t in out["mean_of_first_k"].items():
        print(
            f"first {k:>2} draws, --repeats {k}: terms averaged {t:.3f}, scores averaged (as now) "
            f"{out['scores_of_first_k_averaged'][k]:.3f}; the pick (--pick-repeats {k}): terms averaged (as now) "
            f"{out['the_pick'][k]:.3f}, scores averaged {out['the_pick_scores_averaged'][k]:.3f}"
        )
    print(f"params: tau {out['counts']['params']:.3f}; flops: tau {out['counts']['flops']:.3f}")
    if a.json:
        command = " ".join(["python", "benchmarks/bench_draws.py", *(argv if argv is not None else sys.argv[1:])])
        head = {
            "command": command,
            "proxy": saved["proxy"],
            "truth": saved["truth"],
            "students": len(saved["accuracy"]),
            "init_draw": saved.get("init_draw", "stream"),
        }
        a.json.write_text(json.dumps({**head, **out}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
