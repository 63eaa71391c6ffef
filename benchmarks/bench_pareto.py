"""Multi-objective search (DisWOT score against parameters): hypervolume after N trials.

Compares ``EvolutionSampler`` as ``diswot search --objectives score,params`` builds it (P=20, S=10,
equivalent students counted once), Optuna's ``NSGAIISampler`` (population 20, the same as the
evolution's; Optuna's default is 50) and ``RandomSampler`` on the same trial budgets, over
several seeds, on S0 (teacher ResNet110) and NB201 (teacher: the best NAS-Bench-201 cell).

Each trial's values are ``(DisWOT score, params)``: the score is the paper's DisWOT score
(``--proxy diswot``) computed with ``diswot search``'s own scorer (``make_scoring``: synthetic probe
batch of ``--batch-size`` images, seed 0, Gaussian init) and params is the exact count. Every
architecture of the space is scored once (S0: 64, NB201: 15,625) and the table is shared by all
samplers and seeds, so every sampler sees identical values. A student the space rejects (an
NB201 cell with no input-to-output path) fails its trial, as in ``diswot search``. The
hypervolume is taken in normalised objectives, ``(-score, params)`` each mapped to [0, 1] over the
space's valid students, with the reference point (1.1, 1.1); "of best" divides by the hypervolume
of the space's exact front and "gap" is what is missing to it. A sampler's run has
``max(--trials)`` trials; the hypervolume after N trials is that of its first N.

    python benchmarks/bench_pareto.py --space s0 --trials 20 30 40 --seeds 5 \
        --cache benchmarks/results/pareto-s0-scores.json --json benchmarks/results/pareto-s0-hv.json
    python benchmarks/bench_pareto.py --space nb201 --trials 40 70 100 --seeds 5 --batch-size 8 \
        --cache benchmarks/results/pareto-nb201-scores.json.gz --json benchmarks/results/pareto-nb201-hv.json

``--cache FILE`` (JSON, or gzipped JSON when it ends in ``.gz``: arch -> [score, params]) keeps
the scores so that a rerun scores nothing; ``--json FILE`` writes the figures; ``--first-seed 5``
runs seeds 5-9 instead of 0-4.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import TrialState

from diswot.pipeline.config import SearchConfig
from diswot.pipeline.assembly import make_sampler, make_scoring
from diswot.samplers._pareto import hypervolume, losses

BEST_NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
TEACHERS = {"s0": "resnet110", "nb201": f"nb201:{BEST_NB201}"}
DIRECTIONS = [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
SAMPLERS = ("evolution", "nsga2", "random")
Values = tuple[float, float]


def run_study(
    sampler: optuna.samplers.BaseSampler, suggest: Callable[[Any], Any], values: Callable[[Any], Values | None], n: int
) -> list[Values | None]:
    """``n`` trials of ``sampler``; the (score, params) of each, ``None`` for a failed one."""
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    out = []
    for _ in range(n):
        trial = study.ask()
        v = values(suggest(trial))
        if v is None:
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, v)
        out.append(v)
    return out


def read_cache(path: Path | None) -> dict[str, Values]:
    """The stored scores (empty when there is no file)."""
    if path is None or not path.exists():
        return {}
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    return {k: (v[0], v[1]) for k, v in json.loads(text).items()}


def write_cache(path: Path | None, cache: dict[str, Values]) -> None:
    if path is None:
        return
    text = json.dumps({k: list(v) for k, v in sorted(cache.items())}, indent=0)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        path.write_text(text)


def make(name: str, setup: Any, seed: int) -> optuna.samplers.BaseSampler:
    """The sampler ``name`` as the comparison runs it."""
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=20, seed=seed)
    return make_sampler(
        name, space=setup.space, limits=setup.limits, num_classes=setup.num_classes, seed=seed, objectives=2
    )


def summary(table: dict[str, list[float]], best: float) -> dict[str, Any]:
    """Mean, std, share of the best front, per seed, and evolution against NSGA-II and random."""
    out: dict[str, Any] = {
        name: {
            "mean": statistics.mean(hvs),
            "std": statistics.pstdev(hvs),
            "of_best": statistics.mean(hvs) / best,
            "per_seed": hvs,
        }
        for name, hvs in table.items()
    }
    evo, nsga, rnd = table["evolution"], table["nsga2"], table["random"]
    for name in table:
        out[name]["gap"] = 1 - out[name]["of_best"]
    out["evolution/nsga2"] = statistics.mean(evo) / statistics.mean(nsga)
    out["nsga2_gap/evolution_gap"] = (
        out["nsga2"]["gap"] / out["evolution"]["gap"] if out["evolution"]["gap"] > 0 else float("inf")
    )
    out["evolution/random"] = statistics.mean(evo) / statistics.mean(rnd)
    out["wins_vs_nsga2"] = sum(e > n for e, n in zip(evo, nsga))
    out["ties_vs_nsga2"] = sum(e == n for e, n in zip(evo, nsga))
    out["wins_vs_random"] = sum(e > r for e, r in zip(evo, rnd))
    return out


def machine() -> str:
    """The CPU model and the cores this process may use."""
    model = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "?",
        )
        if Path("/proc/cpuinfo").exists()
        else "?"
    )
    return f"{model}, {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()} cores"


def commit() -> str | None:
    """The short commit of the working tree the script runs from (``+`` when it has changes)."""
    try:
        here = Path(__file__).parent
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+" if dirty else "")


def main() -> None:
    """Print, per N, the hypervolume of each sampler and the evolution's ratio to NSGA-II."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="s0", choices=tuple(TEACHERS))
    p.add_argument("--trials", type=int, nargs="+", default=[20, 30, 40], metavar="N", help="trial budgets N")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--cache", type=Path, help="JSON (or .json.gz) file of scores to read and extend")
    p.add_argument("--json", type=Path, help="write the figures to this file")
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    budgets = sorted(set(args.trials))
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))

    config = SearchConfig(
        space=args.space,
        teacher=TEACHERS[args.space],
        proxy="diswot",
        dataset="synthetic",
        batch_size=args.batch_size,
        device="cpu",
    )
    setup = make_scoring(config)
    space = setup.space
    cache = read_cache(args.cache)
    loaded = len(cache)
    start = time.perf_counter()
    valid: set[str] = set()
    for arch in space.enumerate():
        key = space.encode(arch)
        if space.check(arch, setup.limits, setup.num_classes) is None:
            valid.add(key)
        if key not in cache:
            cache[key] = (setup.scorer.score(arch).score, float(space.count_params(arch, setup.num_classes)))
            if len(cache) % 1000 == 0:
                write_cache(args.cache, cache)
    scoring = time.perf_counter() - start
    if len(cache) > loaded:
        write_cache(args.cache, cache)

    def values(arch: Any) -> Values | None:
        key = space.encode(arch)
        return cache[key] if key in valid else None

    start = time.perf_counter()
    runs = {
        name: [run_study(make(name, setup, seed), space.suggest, values, budgets[-1]) for seed in seeds]
        for name in SAMPLERS
    }
    elapsed = time.perf_counter() - start

    everything = losses([cache[k] for k in valid], DIRECTIONS)
    low, high = everything.min(axis=0), everything.max(axis=0)

    def hv(points: list[Values | None]) -> float:
        done = [p for p in points if p is not None]
        return hypervolume((losses(done, DIRECTIONS) - low) / (high - low), (1.1, 1.1)) if done else 0.0

    best = hv([cache[k] for k in valid])
    print(
        f"{args.space}: {len(cache)} architectures scored (DisWOT on a synthetic batch of {args.batch_size}; "
        f"{len(cache) - loaded} now, {scoring:.0f} s), exact front hypervolume {best:.4f}; "
        f"seeds {seeds[0]}-{seeds[-1]}, {elapsed:.0f} s for the searches"
    )
    figures: dict[str, Any] = {}
    for n in budgets:
        table = {name: [hv(r[:n]) for r in rs] for name, rs in runs.items()}
        figures[str(n)] = s = summary(table, best)
        print(f"\nN = {n} trials")
        print(
            f"{'sampler':<10} {'HV mean':>8} {'std':>7} {'of best':>8} {'gap':>6} {'distinct':>9} {'failed':>7}   per seed"
        )
        for name, hvs in table.items():
            s[name]["distinct_values"] = statistics.mean(len(set(r[:n]) - {None}) for r in runs[name])
            s[name]["failed"] = statistics.mean(r[:n].count(None) for r in runs[name])
            print(
                f"{name:<10} {s[name]['mean']:8.4f} {s[name]['std']:7.4f} {s[name]['of_best']:8.2%} {s[name]['gap']:6.2%} "
                f"{s[name]['distinct_values']:9.1f} {s[name]['failed']:7.1f}   {' '.join(f'{h:.4f}' for h in hvs)}"
            )
        print(
            f"evolution / NSGA-II {s['evolution/nsga2']:.3f}x, higher on {s['wins_vs_nsga2']} of {len(seeds)} seeds "
            f"({s['ties_vs_nsga2']} ties); evolution / random {s['evolution/random']:.3f}x; "
            f"NSGA-II's gap / the evolution's {s['nsga2_gap/evolution_gap']:.1f}x"
        )
    print(
        "\nevolution / NSGA-II per N: "
        + ", ".join(
            f"N={n} {f['evolution/nsga2']:.4f}x ({f['wins_vs_nsga2']}/{len(seeds)}, gap {f['evolution']['gap']:.2%} vs {f['nsga2']['gap']:.2%})"
            for n, f in ((n, figures[str(n)]) for n in budgets)
        )
    )
    if args.json:
        result = {
            "command": "python benchmarks/bench_pareto.py " + " ".join(sys.argv[1:]),
            "space": args.space,
            "teacher": TEACHERS[args.space],
            "machine": machine(),
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "commit": commit(),
            "architectures": len(cache),
            "valid": len(valid),
            "best_front_hypervolume": best,
            "reference_point": [1.1, 1.1],
            "seeds": seeds,
            "budgets": budgets,
            "hypervolume": figures,
        }
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
