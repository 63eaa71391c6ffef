"""Per-trial overhead of EvolutionSampler against optuna's RandomSampler, as the study grows.

One study per (storage, sampler) runs a trivial objective over a toy S0-like space (three
``stageN.depth`` params, 1..7 step 2) up to the largest count, the studies taking turns trial by
trial; the time per trial at a count ``n`` is the mean (or median) wall time of the ask, objective
and tell of trials ``[n - window, n)``.

    python benchmarks/bench_sampler_overhead.py --trials 100,1000,5000 --storages memory,sqlite
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import optuna

from diswot.samplers import EvolutionSampler


def space(trial: optuna.trial.BaseTrial) -> None:
    """The toy S0-like space: three stages of 1, 3, 5 or 7 blocks."""
    for i in range(1, 4):
        trial.suggest_int(f"stage{i}.depth", 1, 7, step=2)


def objective(trial: optuna.trial.Trial) -> float:
    """A trivial objective (deeper is better, up to a cap) over :func:`space`."""
    space(trial)
    return float(min(sum(trial.params.values()), 15))


def within_limit(params: dict[str, int]) -> str | None:
    """A cheap constraint: at most 17 blocks in total."""
    total = sum(params.values())
    return None if total <= 17 else f"{total} blocks > 17"


def run(
    makers: dict[str, Callable[[], optuna.samplers.BaseSampler]], storages: dict[str, str | None], n_trials: int
) -> dict[str, list[float]]:
    """Wall time (s) of each ask-objective-tell trial, one fresh study per sampler.

    The studies advance in turn, one trial each, so machine noise falls on all of them alike.
    """
    studies = {
        name: optuna.create_study(storage=storages[name], sampler=make(), direction="maximize")
        for name, make in makers.items()
    }
    times: dict[str, list[float]] = {name: [] for name in studies}
    for _ in range(n_trials):
        for name, study in studies.items():
            start = time.perf_counter()
            trial = study.ask()
            study.tell(trial, objective(trial))
            times[name].append(time.perf_counter() - start)
    return times


def window_ms(durations: list[float], n: int, window: int, stat: str) -> float:
    """Mean (or median) time per trial over trials [n - window, n), in ms."""
    part = durations[max(0, n - window) : n]
    return 1000 * (statistics.median(part) if stat == "median" else statistics.fmean(part))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", default="100,1000,5000", help="comma-separated trial counts")
    parser.add_argument("--storages", default="memory,sqlite", help="comma-separated: memory, sqlite")
    parser.add_argument("--window", type=int, default=50, help="trials averaged before each count")
    parser.add_argument("--sqlite-dir", default=None, help="where the SQLite files go (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-dedup", action="store_true", help="EvolutionSampler(avoid_duplicates=False)")
    args = parser.parse_args(argv)
    counts = sorted(int(c) for c in args.trials.split(","))
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    samplers: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
        "random": lambda: optuna.samplers.RandomSampler(seed=args.seed),
        "evolution": lambda: EvolutionSampler(
            suggest_func=space, constraint=within_limit, seed=args.seed, avoid_duplicates=not args.no_dedup
        ),
    }
    header = f"{'storage':<8} {'stat':<6} {'trials':>7} {'random ms':>10} {'evo ms':>8} {'evo/random':>11} {'evo/evo@first':>14}"
    print(header, "-" * len(header), sep="\n", flush=True)
    with tempfile.TemporaryDirectory(dir=args.sqlite_dir) as tmp:
        for storage_name in args.storages.split(","):
            if storage_name not in ("memory", "sqlite"):
                parser.error(f"unknown storage {storage_name!r}; use memory or sqlite")
            storages = {
                name: None if storage_name == "memory" else f"sqlite:///{os.path.join(tmp, name + '.db')}"
                for name in samplers
            }
            times = run(samplers, storages, counts[-1])
            for stat in ("mean", "median"):  # the median is robust to GC and disk hiccups
                first = window_ms(times["evolution"], counts[0], args.window, stat)
                for n in counts:
                    rnd = window_ms(times["random"], n, args.window, stat)
                    evo = window_ms(times["evolution"], n, args.window, stat)
                    print(
                        f"{storage_name:<8} {stat:<6} {n:>7} {rnd:>10.3f} {evo:>8.3f} {evo / rnd:>11.2f} {evo / first:>14.2f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
