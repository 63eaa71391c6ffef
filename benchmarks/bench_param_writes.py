"""A trial's params written one by one (Optuna's ``trial.suggest_*``, one storage write each)
against together (``diswot.storage.deferred_params``, one write), per space and storage.

For each storage (a fresh SQLite file, journal file and PostgreSQL database, opened as ``diswot
search`` opens them: commits that do not wait for the disk) and space, trials
alternate between the two ways: ask, suggest the space's student (timed), tell. Prints the mean
and median milliseconds of the suggestion (sampler and param writes) and the ratio.

    taskset -c 1 python benchmarks/bench_param_writes.py --trials 100
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import optuna

from diswot.spaces import get_space
from diswot.storage import deferred_params, open_storage

sys.path.insert(0, str(Path(__file__).parent))
from bench_trial_split import STORAGES, fresh_storage  # noqa: E402


def time_suggestions(url: str, space_name: str, trials: int) -> dict[str, list[float]]:
    """Milliseconds of ``space.suggest`` per trial, one by one and deferred, trial by trial in turn."""
    space = get_space(space_name)
    study = optuna.create_study(
        storage=open_storage(url, async_commit=True), sampler=optuna.samplers.RandomSampler(seed=0)
    )
    times: dict[str, list[float]] = {"one by one": [], "together": []}
    for i in range(2 * trials):
        way = "together" if i % 2 else "one by one"
        trial = study.ask()
        start = time.perf_counter()
        with deferred_params(trial) if way == "together" else nullcontext():
            space.suggest(trial)
        times[way].append(1000 * (time.perf_counter() - start))
        study.tell(trial, 0.0)
    return times


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--storages", default=",".join(STORAGES))
    p.add_argument("--spaces", default="s0,nb201,s2-cifar")
    p.add_argument("--trials", type=int, default=100, help="trials of each way per space and storage")
    p.add_argument("--server", default="127.0.0.1:5432", help="PostgreSQL host:port (a fresh database per run)")
    p.add_argument("--user", default="postgres")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    figures: dict[str, object] = {}
    print("| storage | space | params | one by one ms (median) | together ms (median) | together / one by one |")
    print("|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in (k for k in args.storages.split(",") if k):
            for space_name in (s for s in args.spaces.split(",") if s):
                with fresh_storage(kind, Path(tmp), args.server, args.user) as url:
                    times = time_suggestions(url, space_name, args.trials)
                    n_params = len(optuna.load_study(study_name=None, storage=open_storage(url)).trials[0].params)
                one, together = (statistics.fmean(times[w]) for w in ("one by one", "together"))
                medians = {w: statistics.median(t) for w, t in times.items()}
                figures[f"{kind}-{space_name}"] = {
                    "params": n_params,
                    "mean_ms": {"one by one": one, "together": together},
                    "median_ms": medians,
                }
                print(
                    f"| {kind} | {space_name} | {n_params} | {one:.2f} ({medians['one by one']:.2f}) "
                    f"| {together:.2f} ({medians['together']:.2f}) | {together / one:.2f}x |",
                    flush=True,
                )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
