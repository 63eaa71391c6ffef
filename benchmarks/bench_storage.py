"""Storage benchmark on PostgreSQL: search throughput with 1 and 2 workers, and the per-trial
overhead of the sampler plus storage, EvolutionSampler next to Optuna's RandomSampler.

1. Throughput: ``diswot search --space s0 --teacher resnet20 --dataset synthetic --workers W``
   on a fresh PostgreSQL database, for one worker (torch's default threads, then one thread) and
   two workers (one thread each, as ``--workers 2`` sets on 2 cores). trials/s is given over all
   trials (first start to last completion: interpreter start-up and the teacher's preparation are
   not counted, the command's wall time is shown too) and over the phase when all workers run
   (the second worker's start-up left out).
2. Overhead: one study per sampler on the same PostgreSQL database, a trivial objective over the
   S0 space's own suggest function (``get_space("s0").suggest``), the studies taking turns trial
   by trial; the time per trial at a count n is the mean ask + objective + tell time of trials
   [n - window, n). ``evolution+worker`` adds what ``diswot search`` does per trial besides
   scoring: the worker mark, the trial note and the stale-trial check (at most every 30 s, as
   ``diswot search`` runs it).

    python benchmarks/bench_storage.py                       # both parts, fresh database, dropped after
    python benchmarks/bench_storage.py --part overhead --trials 100,5000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import TrialState

from diswot.pipeline.search import STALE_CHECK_SECONDS, _throttled
from diswot.pipeline.notes import write_trial_note
from diswot.pipeline.assembly import make_sampler
from diswot.spaces import Limits, get_space
from diswot.storage import (
    RetryStaleTrial,
    fail_stale_trials,
    mark_trial_worker,
    open_storage,
    record,
    worker_identity,
)

sys.path.insert(0, str(Path(__file__).parent))
from _search import search_argv  # noqa: E402


def fresh_database(server: str, user: str) -> tuple[str, Callable[[], None]]:
    """Create a database on ``server`` (host:port); return its URL and a function that drops it."""
    import psycopg2

    host, _, port = server.rpartition(":")
    name = f"diswot_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host=host, port=int(port), user=user, dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return f"postgresql+psycopg2://{user}@{host}:{port}/{name}", drop


def throughput(url: str, workers: int, n_trials: int, batch_size: int, threads: int | None = None) -> dict[str, float]:
    """Run a real ``diswot search --workers`` and measure trials/s from the trials' timestamps.

    ``threads`` sets ``OMP_NUM_THREADS`` (torch threads per worker); by default a single worker
    uses torch's default (all cores) and ``--workers N`` gives each worker cores / N.
    """
    study = f"throughput_{workers}w_{uuid.uuid4().hex[:6]}"
    cmd = search_argv(
        space="s0",
        teacher="resnet20",
        batch_size=batch_size,
        study=study,
        n_trials=n_trials,
        workers=workers,
        options=["--top", "0"],
    )
    start = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["DISWOT_STORAGE"] = url
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    trials = optuna.load_study(study_name=study, storage=open_storage(url)).get_trials(states=(TrialState.COMPLETE,))
    first = min(t.datetime_start for t in trials)
    last = max(t.datetime_complete for t in trials)
    span = (last - first).total_seconds()
    # concurrent phase: from the moment every worker has started its first trial to the moment the
    # first worker has finished its last one (worker start-up and the tail are left out)
    by_worker: dict[int, list[optuna.trial.FrozenTrial]] = {}
    for t in trials:
        by_worker.setdefault(t.system_attrs[record.WORKER]["index"], []).append(t)
    begin = max(min(t.datetime_start for t in ts) for ts in by_worker.values())  # type: ignore[type-var]
    end = min(max(t.datetime_complete for t in ts) for ts in by_worker.values())  # type: ignore[type-var]
    steady = [t for t in trials if begin <= t.datetime_complete <= end]  # type: ignore[operator]
    steady_span = (end - begin).total_seconds()  # type: ignore[operator]
    return {
        "workers": workers,
        "threads": threads if threads is not None else (os.cpu_count() or 1) // workers,
        "trials": len(trials),
        "seconds": span,
        "trials_per_s": len(trials) / span,
        "steady_trials": len(steady),
        "steady_trials_per_s": len(steady) / steady_span if steady_span > 0 and len(steady) > 1 else float("nan"),
        "wall_s": wall,
    }


def overhead(url: str, counts: list[int], window: int, seed: int, worker: bool) -> dict[str, dict[int, float]]:
    """Per-trial ms (mean over the window before each count) for each sampler on ``url``."""
    space = get_space("s0")
    limits = Limits()

    def objective(trial: optuna.trial.Trial) -> float:
        arch = space.suggest(trial)
        return float(-abs(sum(arch.depths) - 9))

    identity = worker_identity()
    retry = RetryStaleTrial()

    def worker_objective(trial: optuna.trial.Trial) -> float:
        mark_trial_worker(trial.study._storage, trial._trial_id, identity)
        value = objective(trial)
        write_trial_note(trial, score=value)
        return value

    variants: dict[str, tuple[optuna.samplers.BaseSampler, Callable[[optuna.trial.Trial], float]]] = {
        "random": (optuna.samplers.RandomSampler(seed=seed), objective),
        "evolution": (make_sampler("evolution", space=space, limits=limits, num_classes=100, seed=seed), objective),
    }
    if worker:
        variants["evolution+worker"] = (
            make_sampler("evolution", space=space, limits=limits, num_classes=100, seed=seed),
            worker_objective,
        )
    # as diswot search does: the stale-trial scan at most every STALE_CHECK_SECONDS
    stale_check = _throttled(lambda s: fail_stale_trials(s, retry=retry), STALE_CHECK_SECONDS)
    studies = {
        name: optuna.create_study(
            storage=open_storage(url),
            study_name=f"overhead_{name}_{uuid.uuid4().hex[:6]}",
            sampler=s,
            direction="maximize",
        )
        for name, (s, _) in variants.items()
    }
    times: dict[str, list[float]] = {name: [] for name in studies}
    for i in range(counts[-1]):
        for name, study in studies.items():
            func = variants[name][1]
            start = time.perf_counter()
            trial = study.ask()
            frozen = study.tell(trial, func(trial))
            if name == "evolution+worker":
                stale_check(study, frozen)
            times[name].append(time.perf_counter() - start)
        if (i + 1) % 500 == 0:
            print(f"  {i + 1} trials", file=sys.stderr, flush=True)
    return {name: {n: 1000 * statistics.fmean(t[max(0, n - window) : n]) for n in counts} for name, t in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--server", default="127.0.0.1:5432", help="PostgreSQL host:port (a fresh database is created and dropped)"
    )
    parser.add_argument("--user", default="postgres", help="PostgreSQL user that may create databases")
    parser.add_argument("--storage", help="use this storage URL instead of a fresh database")
    parser.add_argument("--part", choices=("all", "throughput", "overhead"), default="all")
    parser.add_argument("--search-trials", type=int, default=200, help="trials per throughput run (all workers)")
    parser.add_argument("--batch-size", type=int, default=64, help="probe batch of the throughput searches")
    parser.add_argument("--trials", default="100,5000", help="trial counts of the overhead part")
    parser.add_argument("--window", type=int, default=50, help="trials averaged before each count")
    parser.add_argument("--no-worker", action="store_true", help="skip the evolution+worker variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, drop = (args.storage, lambda: None) if args.storage else fresh_database(args.server, args.user)
    results: dict[str, object] = {
        "storage": "postgresql (fresh database)" if not args.storage else "given",
        "cpus": os.cpu_count(),
    }
    try:
        if args.part in ("all", "throughput"):
            runs = [(1, None), (1, 1), (2, None)]  # 1 worker with all cores, with one thread; 2 workers
            rows = [throughput(url, w, args.search_trials, args.batch_size, t) for w, t in runs]
            results["throughput"] = rows
            print(
                f"\nthroughput, diswot search S0 (resnet20 teacher, synthetic batch {args.batch_size}), {args.search_trials} trials"
            )
            print(
                "| workers | torch threads each | trials/s (first start to last end) | speed-up | trials/s while all workers run | speed-up | command wall s |"
            )
            print("|---|---|---|---|---|---|---|")
            for r in rows:
                print(
                    f"| {r['workers']} | {r['threads']} | {r['trials_per_s']:.2f} | {r['trials_per_s'] / rows[0]['trials_per_s']:.2f}x "
                    f"| {r['steady_trials_per_s']:.2f} ({r['steady_trials']} trials) | {r['steady_trials_per_s'] / rows[0]['steady_trials_per_s']:.2f}x "
                    f"| {r['wall_s']:.1f} |"
                )
        if args.part in ("all", "overhead"):
            counts = sorted(int(c) for c in args.trials.split(","))
            table = overhead(url, counts, args.window, args.seed, not args.no_worker)
            results["overhead_ms"] = table
            names = list(table)
            print(
                f"\nsampler + storage overhead per trial (ms, mean of the {args.window} trials before n), trivial objective over S0"
            )
            print("| n | " + " | ".join(names) + " | evolution / random |\n|---|" + "---|" * (len(names) + 1))
            for n in counts:
                cells = " | ".join(f"{table[name][n]:.1f}" for name in names)
                print(f"| {n} | {cells} | {table['evolution'][n] / table['random'][n]:.2f}x |")
    finally:
        drop()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)


if __name__ == "__main__":
    main()
