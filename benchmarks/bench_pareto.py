"""Multi-objective search (DisWOT score against parameters): hypervolume after N trials.

Compares ``EvolutionSampler`` (as ``diswot search --objectives score,params``: Pareto-rank
tournament with crowding tie-break, P=20, S=10), Optuna's ``NSGAIISampler`` (population 20, the
same as the evolution's; Optuna's default is 50) and ``RandomSampler`` on the same trial budget,
over several seeds, on S0 (teacher ResNet110) and NB201 (teacher: the best NAS-Bench-201 cell).

Each trial's values are ``(DisWOT score, params)``: the score is computed once per architecture
with ``diswot search``'s own scorer (``make_scoring``: synthetic probe batch of ``--batch-size``
images, seed 0, Gaussian init; the cache is shared by all samplers and seeds, so every sampler
sees identical values) and params is the exact count. The hypervolume is taken in normalised
objectives, ``(-score, params)`` each mapped to [0, 1] over every architecture scored in the run
(all 64 of S0; on NB201 all those any sampler evaluated), with the reference point (1.1, 1.1).
It is also reported as a fraction of the hypervolume of the best known front (S0: exact).

    python benchmarks/bench_pareto.py --space s0 --trials 30 --seeds 5
    python benchmarks/bench_pareto.py --space nb201 --trials 40 --seeds 5

``--cache FILE`` keeps the scores (JSON, arch -> [score, params]) so that a rerun, or another
``--trials``, scores only what it has not seen.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.study import StudyDirection

from diswot.pipeline.config import SearchConfig
from diswot.pipeline.search import make_sampler, make_scoring
from diswot.samplers._pareto import hypervolume, losses

BEST_NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
TEACHERS = {"s0": "resnet110", "nb201": f"nb201:{BEST_NB201}"}
DIRECTIONS = [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
SAMPLERS = ("evolution", "nsga2", "random")


def run_study(sampler: optuna.samplers.BaseSampler, suggest: Callable[[Any], Any], values: Callable[[Any], tuple[float, float]], n: int) -> list[tuple[float, float]]:
    """``n`` trials of ``sampler``; the (score, params) of each."""
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    out = []
    for _ in range(n):
        trial = study.ask()
        v = values(suggest(trial))
        study.tell(trial, v)
        out.append(v)
    return out


def main() -> None:
    """Print the mean hypervolume per sampler and the per-seed comparison with NSGA-II."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="s0", choices=tuple(TEACHERS))
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--cache", type=Path, help="JSON file of scores to read and extend")
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)

    config = SearchConfig(space=args.space, teacher=TEACHERS[args.space], dataset="synthetic", batch_size=args.batch_size, device="cpu")
    setup = make_scoring(config)
    space = setup.space
    cache: dict[str, tuple[float, float]] = {}
    if args.cache and args.cache.exists():
        cache = {k: (v[0], v[1]) for k, v in json.loads(args.cache.read_text()).items()}
    loaded = len(cache)

    def save() -> None:
        if args.cache:
            args.cache.write_text(json.dumps({k: list(v) for k, v in sorted(cache.items())}, indent=0))
    scoring = [0.0]

    def values(arch: Any) -> tuple[float, float]:
        key = space.encode(arch)
        if key not in cache:
            start = time.perf_counter()
            score = setup.scorer.score(arch).score
            scoring[0] += time.perf_counter() - start
            cache[key] = (score, float(space.count_params(arch, setup.num_classes)))
            if len(cache) % 25 == 0:
                save()
        return cache[key]

    exhaustive = args.space == "s0"
    if exhaustive:
        for arch in space.enumerate():
            values(arch)
    start = time.perf_counter()
    runs: dict[str, list[list[tuple[float, float]]]] = {name: [] for name in SAMPLERS}
    for seed in range(args.seeds):
        for name in SAMPLERS:
            if name == "nsga2":
                sampler: optuna.samplers.BaseSampler = optuna.samplers.NSGAIISampler(population_size=20, seed=seed)
            else:
                sampler = make_sampler(name, space=space, limits=setup.limits, num_classes=setup.num_classes, seed=seed)
            runs[name].append(run_study(sampler, space.suggest, values, args.trials))
    elapsed = time.perf_counter() - start
    save()

    everything = losses(list(cache.values()), DIRECTIONS)
    low, high = everything.min(axis=0), everything.max(axis=0)

    def hv(points: list[tuple[float, float]]) -> float:
        return hypervolume((losses(points, DIRECTIONS) - low) / (high - low), (1.1, 1.1))

    best_known = hv(list(cache.values()))
    print(
        f"{args.space}: {args.trials} trials x {args.seeds} seeds per sampler; {len(cache)} architectures scored "
        f"({'all' if exhaustive else 'those evaluated'}), DisWOT on a synthetic batch of {args.batch_size}, "
        f"{len(cache) - loaded} of them now ({scoring[0]:.0f} s scoring), {elapsed:.0f} s for the searches"
    )
    print(f"best-known front hypervolume {best_known:.4f} ({'exact' if exhaustive else 'union of all runs'})\n")
    table = {name: [hv(r) for r in rs] for name, rs in runs.items()}
    print(f"{'sampler':<10} {'HV mean':>8} {'std':>7} {'of best':>8} {'distinct':>9}   per seed")
    for name, hvs in table.items():
        distinct = statistics.mean(len({v for v in r}) for r in runs[name])
        print(
            f"{name:<10} {statistics.mean(hvs):8.4f} {statistics.pstdev(hvs):7.4f} {statistics.mean(hvs) / best_known:8.1%} "
            f"{distinct:9.1f}   {' '.join(f'{h:.4f}' for h in hvs)}"
        )
    wins = sum(e > n for e, n in zip(table["evolution"], table["nsga2"]))
    ties = sum(e == n for e, n in zip(table["evolution"], table["nsga2"]))
    ratio = statistics.mean(table["evolution"]) / statistics.mean(table["nsga2"])
    print(f"\nevolution / NSGA-II mean hypervolume: {ratio:.3f}x; evolution higher on {wins} of {args.seeds} seeds ({ties} ties)")
    print(f"evolution / random: {statistics.mean(table['evolution']) / statistics.mean(table['random']):.3f}x")
    assert np.isfinite(ratio)


if __name__ == "__main__":
    main()
