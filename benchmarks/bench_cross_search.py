"""What a real search recommends with each score, on both development benchmarks.

For each benchmark, score and seed, one whole search runs in this process with
:func:`~diswot.pipeline.run_search` on SQLite: the reference sample, ``--trials`` trials of the
evolutionary sampler and the pick stage, on the real CIFAR probe images of ``tests/data/cifar``
(``nb201``: teacher the best CIFAR-100 NAS-Bench-201 cell, CIFAR-100 images; ``macro``: teacher
``macro:22222222``, CIFAR-10 images, ``--max-params 1M`` as the product's budget). No ground truth
is read until the recommended student is looked up. Reported: the recommended student's accuracy
(NAS-Bench-201 CIFAR-100 validation, NAS-Bench-Macro CIFAR-10 test), mean ± std over the seeds,
beside what the table holds within the same limits (the best, the FLOPs-largest and the
params-largest student: what a search that maximises FLOPs or params approaches).

Finished studies are kept in ``--work`` and reused, so the benchmark resumes where it stopped.

    python benchmarks/bench_cross_search.py --benches nb201,macro --proxies diswot-flow,diswot --seeds 0,1,2 --trials 300
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from diswot.pipeline import SearchConfig, recommended_trial, run_search
from diswot.pipeline.benchmark_truth import benchmark_truth
from diswot.spaces import get_space, parse_count

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cross_ranking import BENCHES, ROOT, imagefolder, teacher_arch  # noqa: E402

LIMITS = {"nb201": None, "macro": "1M"}


def search(bench: str, proxy: str, seed: int, trials: int, work: Path) -> tuple[str, float]:
    """The recommended student of one (resumable) search, and the seconds it took."""
    b = BENCHES[bench]
    space = get_space(b.space)
    teacher = f"{b.space}:{space.encode(teacher_arch(b, space))}"
    config = SearchConfig(
        space=b.space,
        teacher=teacher,
        proxy=proxy,
        dataset="imagefolder",
        data_dir=str(imagefolder(b, work.parent / "cifar-imagefolders")),
        image_size=32,
        num_classes=b.num_classes,
        seed=seed,
        device="cpu",
        max_params=parse_count(LIMITS[bench]),
    )
    work.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{work / f'{bench}-{proxy}-{seed}-{trials}.db'}"
    start = time.perf_counter()
    study = optuna.create_study(storage=url, study_name="s", load_if_exists=True, directions=["maximize"])
    left = trials - len(study.trials)
    if left > 0 or recommended_trial(study) is None:
        study = run_search(config, url, n_trials=max(left, 1), study_name="s", note_every=0)
    best = recommended_trial(study)
    assert best is not None
    return str(best.user_attrs["arch"]), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--benches", default="nb201,macro")
    p.add_argument("--proxies", default="diswot-flow,diswot")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--trials", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".data" / "cross-search")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows: list[dict[str, Any]] = []
    for bench in args.benches.split(","):
        b = BENCHES[bench]
        space = get_space(b.space)
        truth = benchmark_truth(b.truth, space)
        acc = dict(zip(truth.names, truth.accuracy.tolist()))
        limit = parse_count(LIMITS[bench])
        within = [a for a in truth.archs if limit is None or space.count_params(a, b.num_classes) <= limit]
        from diswot.proxies import arch_flops

        by_params = max(within, key=lambda a: space.count_params(a, b.num_classes))
        best = max(acc[space.encode(a)] for a in within)
        line = f"{bench}: best within the limits {best:.2f}, params-largest {acc[space.encode(by_params)]:.2f}"
        if bench == "macro":  # FLOPs of 6,561 students: cheap on the meta device
            by_flops = max(within, key=lambda a: arch_flops(space, a, b.num_classes, 32))
            line += f", FLOPs-largest {acc[space.encode(by_flops)]:.2f}"
        print(line)
        for proxy in args.proxies.split(","):
            picks = [search(bench, proxy, int(s), args.trials, args.work) for s in args.seeds.split(",")]
            accs = [acc[a] for a, _ in picks]
            rank = [int(np.sum(truth.accuracy > acc[a])) + 1 for a, _ in picks]
            rows.append(
                {
                    "bench": bench,
                    "proxy": proxy,
                    "mean": float(np.mean(accs)),
                    "std": float(np.std(accs)),
                    "picks": [a for a, _ in picks],
                    "accuracies": accs,
                    "ranks": rank,
                    "seconds": [t for _, t in picks],
                }
            )
            print(
                f"  {proxy:24s} {np.mean(accs):6.2f} ± {np.std(accs):4.2f}  median rank {int(np.median(rank))} "
                f"of {len(truth)}  picks {', '.join(a for a, _ in picks)}",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "trials": args.trials, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
