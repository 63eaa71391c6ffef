"""Scoring cost and search picks on the student families (``macro``, ``autoformer-ti``, ``pit-ti``).

``cost``: for each space (every registered one by default), batch size and CPU thread count, the
same seeded students are scored with the default score (``diswot-teacher-balance``: one forward in
inference mode plus SynFlow's batch-of-one pass), the paper's score (``diswot``: one forward in
inference mode) and ``diswot-prior`` (one forward with FLOP hooks), against one bare forward pass of
the student (build and init excluded), each student's three timings back to back, the fastest of ``--reps`` kept, so the
ratios hold on a busy machine even where the absolute times drift. The raw terms are timed (the default's rank against its reference
sample is a look-up and is left out, as is the reference sample itself).

``search``: runs ``diswot search`` (default score, evolution, ``resnet56`` teacher, synthetic
probe data) and prints what it recommends: arch, parameters, FLOPs, confirmed score, wall time.

    python benchmarks/bench_families.py cost --students 2 --reps 2 --batches 32,64 --threads 1,2
    python benchmarks/bench_families.py search --space pit-ti --n-trials 300 --batch-size 16 --max-params 5M
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import torch

from diswot.pipeline import SearchConfig, recommended_trial
from diswot.pipeline.config import DEFAULT_PROXY
from diswot.pipeline.assembly import make_scoring
from diswot.spaces import parse_count

sys.path.insert(0, str(Path(__file__).parent))
from _search import search_argv  # noqa: E402
import _candidate_proxies  # noqa: E402, F401  (registers the candidate signals, for --extra-proxies)

SPACES = ("macro", "autoformer-ti", "pit-ti")
PROXIES = (DEFAULT_PROXY, "diswot", "diswot-prior")
#: the teacher of each family's cost figures: the largest macro student, else a CIFAR ResNet-56
TEACHERS = {"macro": "macro:22222222"}


def _students(space_name: str, n: int, seed: int = 0, max_params: float | None = None) -> list[Any]:
    """``n`` seeded random students of the space (a RandomSampler's draws; with ``max_params``, the
    first ``n`` draws within it, as a search under that limit would score)."""
    from diswot.spaces import get_space

    space = get_space(space_name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    archs: list[Any] = []
    for _ in range(1000 * n):
        trial = study.ask()
        arch = space.suggest(trial)
        study.tell(trial, 0.0)
        if max_params is None or space.count_params(arch, 100) <= max_params:
            archs.append(arch)
        if len(archs) == n:
            return archs
    raise SystemExit(f"{space_name}: fewer than {n} of {1000 * n} random students within {max_params:g} parameters")


def _ms(fn: Any, *args: Any) -> float:
    """Milliseconds of one call ``fn(*args)``."""
    start = time.perf_counter()
    fn(*args)
    return 1000 * (time.perf_counter() - start)


def time_one(
    space: str,
    batch: int,
    threads: int,
    students: int,
    reps: int,
    max_params: float | None = None,
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """ms per candidate of each proxy's terms (``extra``: more proxies, e.g. the benchmark's candidate
    signals) and of one bare forward, on the same students.

    The three are timed back to back for each student, ``reps`` times, and the fastest of each is
    kept: on a machine shared with other jobs the minimum is the least disturbed figure, and the
    ratios compare measurements taken seconds apart.
    """
    torch.set_num_threads(threads)
    archs = _students(space, students, max_params=max_params)
    row: dict[str, Any] = {"space": space, "batch": batch, "threads": threads, "students": len(archs), "reps": reps}
    row["max_params"] = max_params
    proxies = (*PROXIES, *extra)
    scorers = {
        proxy: make_scoring(
            SearchConfig(
                space=space, teacher=TEACHERS.get(space, "resnet56"), dataset="synthetic", batch_size=batch, proxy=proxy
            )
        ).scorer
        for proxy in proxies
    }
    images = scorers[PROXIES[0]].batches[0].images
    times: dict[str, list[float]] = {name: [] for name in (*proxies, "forward")}
    for arch in archs:
        best = {name: math.inf for name in times}
        net = scorers[PROXIES[0]].build(arch)
        with torch.inference_mode():
            net(images)  # warm-up: allocator, oneDNN kernels
        for _ in range(reps):
            for proxy, scorer in scorers.items():
                best[proxy] = min(best[proxy], _ms(scorer.raw, arch))
            with torch.inference_mode():
                best["forward"] = min(best["forward"], _ms(net, images))
        for name, value in best.items():
            times[name].append(value)
    for name, values in times.items():
        row[name] = statistics.mean(values)
    for proxy in proxies:
        row[f"{proxy}/forward"] = row[proxy] / row["forward"]
    return row


def run_cost(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every space x batch x threads setting, printed as it finishes."""
    rows = []
    for space in args.spaces.split(","):
        for batch in map(int, args.batches.split(",")):
            for threads in map(int, args.threads.split(",")):
                limit = parse_count(args.max_params) if args.max_params else None
                extra = tuple(p for p in args.extra_proxies.split(",") if p)
                row = time_one(space, batch, threads, args.students, args.reps, limit, extra)
                rows.append(row)
                print(
                    f"{space:14s} batch {batch:3d} threads {threads}: default {row[PROXIES[0]]:8.0f} ms, "
                    f"paper {row[PROXIES[1]]:8.0f} ms, forward {row['forward']:7.0f} ms; "
                    f"default/forward {row[f'{PROXIES[0]}/forward']:.2f}, paper/forward {row[f'{PROXIES[1]}/forward']:.2f}, "
                    f"{PROXIES[2]}/forward {row[f'{PROXIES[2]}/forward']:.2f}"
                    + "".join(f", {p}/forward {row[f'{p}/forward']:.2f}" for p in extra),
                    flush=True,
                )
    return rows


def run_search(args: argparse.Namespace) -> dict[str, Any]:
    """One real ``diswot search``; the recommended student and the wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{Path(tmp) / 'study.db'}"
        options = ["--storage", storage, "--reference-size", str(args.reference_size), "--seed", str(args.seed)]
        if args.max_params:
            options += ["--max-params", args.max_params]
        argv = search_argv(
            space=args.space,
            teacher="resnet56",
            batch_size=args.batch_size,
            study="families",
            n_trials=args.n_trials,
            options=options,
        )
        start = time.perf_counter()
        subprocess.run(argv, check=True)
        wall = time.perf_counter() - start
        study = optuna.load_study(study_name="families", storage=storage)
        best = recommended_trial(study)
        if best is None:
            raise SystemExit("the search recommended no trial")
        complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        result = {
            "space": args.space,
            "n_trials": args.n_trials,
            "batch": args.batch_size,
            "reference_size": args.reference_size,
            "max_params": args.max_params,
            "complete": len(complete),
            "wall_s": wall,
            "trial": best.number,
            "arch": best.user_attrs["arch"],
            "params": best.user_attrs["params"],
            "flops": best.user_attrs["flops"],
            "score": best.value,
            "params_range": [
                min(t.user_attrs["params"] for t in complete),
                max(t.user_attrs["params"] for t in complete),
            ],
        }
    print(json.dumps(result, indent=2))
    return result


def main() -> None:
    """Parse the command line and run ``cost`` or ``search``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    cost = sub.add_parser("cost", help="ms per candidate: default and paper score against one forward")
    from diswot.spaces import list_spaces

    cost.add_argument("--spaces", default=",".join(list_spaces()))
    cost.add_argument("--batches", default="32,64")
    cost.add_argument("--threads", default="1,2")
    cost.add_argument("--students", type=int, default=2)
    cost.add_argument("--reps", type=int, default=2, help="timings per student; the fastest is kept")
    cost.add_argument(
        "--max-params", help="students within this many parameters only (e.g. 5M), as a limited search scores"
    )
    cost.add_argument(
        "--extra-proxies",
        default="",
        help="more proxies timed beside, comma-separated (the candidate signals of bench_cross_ranking.py too)",
    )
    search = sub.add_parser("search", help="what a diswot search recommends")
    search.add_argument("--space", choices=SPACES, required=True)
    search.add_argument("--n-trials", type=int, default=300)
    search.add_argument("--batch-size", type=int, default=16)
    search.add_argument("--reference-size", type=int, default=64)
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--max-params", help="passed to diswot search, e.g. 5M")
    for p in (cost, search):
        p.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    result: Any = run_cost(args) if args.what == "cost" else run_search(args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
