"""Evolution vs random search on S0: trials needed to reach the best of all 64 architectures.

1. Scores all 64 S0 architectures exhaustively with the DisWOT objective (one fixed probe batch,
   one teacher), exactly as a search would.
2. Runs ``EvolutionSampler`` (P=20, S=10, as ``diswot search``) and optuna's ``RandomSampler``
   over those scores for 10 seeds each, and counts the trials until the best architecture is
   first evaluated.

    python benchmarks/bench_evolution_vs_random.py [--teacher resnet110] [--dataset synthetic] [--seeds 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import optuna

from diswot.pipeline.config import SearchConfig
from diswot.pipeline.assembly import make_sampler, make_scoring


def trials_to_best(sampler: optuna.samplers.BaseSampler, space, table: dict, best: str, cap: int) -> int:  # noqa: ANN001
    """Run a study over the precomputed ``table`` until ``best`` is evaluated; return the count."""
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for n in range(1, cap + 1):
        trial = study.ask()
        arch = space.encode(space.suggest(trial))
        study.tell(trial, table[arch])
        if arch == best:
            return n
    return cap


def main() -> None:
    """Print the exhaustive ranking head and the trials-to-best of both samplers."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="resnet110")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--data-dir")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--cap", type=int, default=1000)
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    config = SearchConfig(
        space="s0", teacher=args.teacher, dataset=args.dataset, data_dir=args.data_dir, batch_size=args.batch_size
    )
    setup = make_scoring(config)
    space = setup.space
    start = time.perf_counter()
    table = {space.encode(a): setup.scorer.score(a).score for a in space.enumerate()}
    elapsed = time.perf_counter() - start
    ranked = sorted(table, key=table.get, reverse=True)
    best = ranked[0]
    print(
        f"scored all {len(table)} S0 architectures against {args.teacher} in {elapsed:.1f} s "
        f"({elapsed / len(table) * 1000:.0f} ms each); best {best} = {table[best]:.6g}"
    )
    print("top 5:", ", ".join(f"{a} {table[a]:.5g}" for a in ranked[:5]))

    results: dict[str, list[int]] = {"evolution": [], "random": []}
    for seed in range(args.seeds):
        for name in results:
            sampler = make_sampler(name, space=space, limits=setup.limits, num_classes=setup.num_classes, seed=seed)
            results[name].append(trials_to_best(sampler, space, table, best, args.cap))
    print(f"\ntrials until the best S0 architecture is found, over {args.seeds} seeds:")
    print(f"{'sampler':<10} {'mean':>7} {'median':>7} {'min':>5} {'max':>5}   per seed")
    for name, counts in results.items():
        print(
            f"{name:<10} {statistics.mean(counts):7.1f} {statistics.median(counts):7.1f} {min(counts):5d} {max(counts):5d}   {counts}"
        )
    ratio = statistics.mean(results["random"]) / statistics.mean(results["evolution"])
    print(f"random / evolution: {ratio:.2f}x")


if __name__ == "__main__":
    main()
