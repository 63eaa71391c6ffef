"""Reduced-precision scoring: does bf16/TF32 rank S2 students like fp32?

Draws N random S2 students within the limits (the evolutionary sampler's random initialisation),
scores each in fp32 and in the reduced precision with the same teacher, probe batch and init,
and prints Kendall's tau between the two rankings and the time per candidate of each.
The option stays off by default unless tau >= 0.99 (issue 6).

    python benchmarks/bench_precision.py --space s2-cifar --students 200 --precision bf16 [--device cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import optuna
from scipy.stats import kendalltau

from diswot.pipeline.config import SearchConfig
from diswot.pipeline.assembly import limit_constraint, make_scoring
from diswot.samplers._realize import random_valid_params


def main() -> None:
    """Score random students in two precisions and compare the rankings."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="s2-cifar")
    p.add_argument("--teacher", default="resnet56")
    p.add_argument("--max-params", default="1000000")
    p.add_argument("--students", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--precision", default="bf16", choices=("bf16", "tf32"))
    p.add_argument("--device", default="cuda")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    base = dict(
        space=args.space,
        teacher=args.teacher,
        dataset="synthetic",
        batch_size=args.batch_size,
        device=args.device,
        seed=args.seed,
        max_params=int(float(args.max_params)),
    )
    ref = make_scoring(SearchConfig(**base))
    low = make_scoring(SearchConfig(precision=args.precision, **base))
    space = ref.space
    constraint = limit_constraint(space, ref.limits, ref.num_classes)
    rng = np.random.RandomState(args.seed)
    archs = [space.from_params(random_valid_params(space.suggest, constraint, rng)) for _ in range(args.students)]
    scores: dict[str, list[float]] = {"fp32": [], args.precision: []}
    times: dict[str, float] = {"fp32": 0.0, args.precision: 0.0}
    for i, arch in enumerate(archs):
        for name, setup in (("fp32", ref), (args.precision, low)):
            t = time.perf_counter()
            scores[name].append(setup.scorer.score(arch).score)
            times[name] += time.perf_counter() - t
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{len(archs)} students", flush=True)
    tau = kendalltau(scores["fp32"], scores[args.precision]).statistic
    print(
        f"{args.space}, {len(archs)} random students <= {args.max_params} params, device {ref.scorer.device}, "
        f"batch {args.batch_size}"
    )
    print(f"Kendall tau fp32 vs {args.precision}: {tau:.4f} ({'meets' if tau >= 0.99 else 'misses'} the 0.99 bar)")
    for name, total in times.items():
        print(f"{name}: {1000 * total / len(archs):.1f} ms per candidate")


if __name__ == "__main__":
    main()
