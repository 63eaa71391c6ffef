"""Where a trial's time goes: scoring against the rest (sampler, storage, notes), by storage, and
search throughput against the number of workers.

1. Split: a real ``diswot search`` (the CLI in a subprocess; by default S0, ResNet110 teacher,
   synthetic batch 64, one worker) on a fresh storage of each kind. A trial's cycle is the time
   from its start to the next trial's start (ask, sampler, objective, tell, callbacks); its
   scoring time is its ``score_seconds`` user attribute; the rest is the difference. Printed per
   window of ``--window`` trials, so a long search shows whether the rest grows with the study,
   as the mean rest / mean scoring of the same trials.
   ``--prefill N`` then fills the study up to N trials with COMPLETE copies of real S0 students
   (the searched trials' params, user attributes and scores, written through Optuna's
   ``add_trials``) and runs ``--trials`` more real trials, to show the rest at a study of N trials
   without scoring N students.
2. Workers (``--workers 1,2,4,8``): trials/s of ``diswot search --workers W`` on each storage,
   from the first trial's start to the last trial's end.

    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/bench_trial_split.py --trials 200
    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/bench_trial_split.py --trials 100 --prefill 5000
        # the rest at trials 0-100, then at 4,900-5,000 of a study filled with copies
    python benchmarks/bench_trial_split.py --trials 0 --workers 1,2,4,8 --worker-trials 120
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.trial import TrialState

from diswot.storage import open_storage
from diswot.storage.record import REUSED_FROM

sys.path.insert(0, str(Path(__file__).parent))
from _search import search_argv, trials_per_second  # noqa: E402

STORAGES = ("sqlite", "journal", "postgresql")


@contextmanager
def fresh_storage(kind: str, tmp: Path, server: str, user: str) -> Iterator[str]:
    """A URL of an empty storage of ``kind`` (PostgreSQL: a new database, dropped afterwards)."""
    name = uuid.uuid4().hex[:8]
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'{name}.db'}"
    elif kind == "journal":
        yield f"journal:///{tmp / f'{name}.log'}"
    elif kind == "postgresql":
        from bench_storage import fresh_database

        url, drop = fresh_database(server, user)
        try:
            yield url
        finally:
            drop()
    else:
        raise SystemExit(f"unknown storage {kind!r}; use {', '.join(STORAGES)}")


def run_search(url: str, args: argparse.Namespace, n_trials: int, workers: int) -> float:
    """Run ``diswot search`` on ``url``; return the command's wall time."""
    cmd = search_argv(
        space=args.space,
        teacher=args.teacher,
        batch_size=args.batch_size,
        study="split",
        n_trials=n_trials,
        workers=workers,
        options=[
            "--device",
            args.device,
            "--top",
            "1",
            *(["--rescore"] * args.rescore),
            *(["--proxy", args.proxy] * bool(args.proxy)),
        ],
    )
    env = dict(os.environ, DISWOT_STORAGE=url)
    if workers > 1:
        env.pop("OMP_NUM_THREADS", None)  # --workers shares the cores between its workers
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def finished_trials(url: str) -> list[optuna.trial.FrozenTrial]:
    trials = optuna.load_study(study_name="split", storage=open_storage(url)).get_trials(deepcopy=False)
    return sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.number)


def split(trials: list[optuna.trial.FrozenTrial], window: int) -> list[dict[str, float]]:
    """Per window of trials: the mean scoring time and rest (ms) of the trials that scored a student,
    their rest / scoring, and the mean cycle of the trials that reused a stored score (no forward
    pass: all of it is rest)."""
    rows = []
    for lo in range(0, len(trials) - 1, window):
        scored: list[tuple[float, float]] = []  # (cycle, scoring) of trials that ran a forward pass
        reused: list[float] = []  # cycles of trials that took a stored score
        for t, nxt in zip(trials[lo : lo + window], trials[lo + 1 : lo + window + 1]):
            cycle = (nxt.datetime_start - t.datetime_start).total_seconds()  # type: ignore[operator]
            if REUSED_FROM in t.user_attrs:
                reused.append(cycle)
            else:
                scored.append((cycle, float(t.user_attrs["score_seconds"])))
        row: dict[str, float] = {"from": trials[lo].number, "to": trials[lo].number + len(scored) + len(reused)}
        row["scored"], row["reused"] = len(scored), len(reused)
        if scored:
            c, s = statistics.fmean(a for a, _ in scored), statistics.fmean(b for _, b in scored)
            row.update(
                cycle_ms=1000 * c,
                scoring_ms=1000 * s,
                rest_ms=1000 * (c - s),
                rest_over_scoring=(c - s) / s,
                median_rest_ms=1000 * statistics.median(a - b for a, b in scored),
            )
        if reused:
            row["reused_cycle_ms"] = 1000 * statistics.fmean(reused)
            row["median_reused_cycle_ms"] = 1000 * statistics.median(reused)
        rows.append(row)
    return rows


def prefill(url: str, total: int) -> None:
    """Add COMPLETE copies of the study's complete trials until it holds ``total`` trials."""
    study = optuna.load_study(study_name="split", storage=open_storage(url))
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    copies = [
        optuna.trial.create_trial(
            params=t.params, distributions=t.distributions, value=t.value, user_attrs=t.user_attrs
        )
        for t in (done[i % len(done)] for i in range(total - len(trials)))
    ]
    for lo in range(0, len(copies), 500):
        study.add_trials(copies[lo : lo + 500])


def format_row(r: dict[str, float]) -> str:
    """The rest of a split row, as markdown cells ("-" where the window has no such trial)."""
    cells = (
        [
            f"{r['scoring_ms']:.1f}",
            f"{r['rest_ms']:.1f}",
            f"{r['median_rest_ms']:.1f}",
            f"{r['rest_over_scoring']:.2f}x",
        ]
        if r["scored"]
        else ["-"] * 4
    )
    cells += [f"{r['reused']:.0f}", f"{r['median_reused_cycle_ms']:.1f}" if r["reused"] else "-"]
    return " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--storages", default=",".join(STORAGES))
    p.add_argument("--trials", type=int, default=200, help="trials of the split search (0: skip)")
    p.add_argument("--window", type=int, default=100, help="trials per row of the split")
    p.add_argument(
        "--prefill", type=int, default=0, help="then fill the study to this many trials and search --trials more"
    )
    p.add_argument("--space", default="s0")
    p.add_argument("--teacher", default="resnet110")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--proxy", help="the search's --proxy (default: the search's default)")
    p.add_argument(
        "--rescore", action="store_true", help="pass --rescore: every trial scores its student (S0 has only 64)"
    )
    p.add_argument("--workers", default="", help="worker counts for the throughput part, e.g. 1,2,4,8 (default: skip)")
    p.add_argument("--worker-trials", type=int, default=120, help="trials per throughput run (all workers)")
    p.add_argument("--server", default="127.0.0.1:5432", help="PostgreSQL host:port (a fresh database per run)")
    p.add_argument("--user", default="postgres")
    p.add_argument("--dir", help="keep the SQLite and journal files here (default: a temporary folder)")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kinds = [k for k in args.storages.split(",") if k]
    figures: dict[str, object] = {
        "setting": f"{args.space}, teacher {args.teacher}, batch {args.batch_size}, {args.device}"
        + (", --rescore" * args.rescore)
        + (f", --proxy {args.proxy}" * bool(args.proxy)),
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
    }
    print(
        f"diswot search --space {args.space} --teacher {args.teacher} --dataset synthetic --batch-size {args.batch_size} "
        f"--device {args.device}{' --rescore' * args.rescore}{f' --proxy {args.proxy}' * bool(args.proxy)}; "
        f"OMP_NUM_THREADS={figures['threads']}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        if args.trials:
            print(
                "| storage | trials | scored | scoring ms | rest ms | rest (median) ms | rest / scoring | reused | reused trial ms (median) |\n"
                "|---|---|---:|---:|---:|---:|---:|---:|---:|"
            )
            for kind in kinds:
                with fresh_storage(kind, Path(tmp), args.server, args.user) as url:
                    wall = run_search(url, args, args.trials, 1)
                    rows = split(finished_trials(url), args.window)
                    if args.prefill:
                        prefill(url, args.prefill - args.trials)
                        run_search(url, args, args.trials, 1)
                        rows += split(finished_trials(url)[args.prefill - args.trials :], args.window)
                figures[f"split-{kind}"] = {"wall_s": wall, "windows": rows}
                for r in rows:
                    print(
                        f"| {kind} | {r['from']:.0f}-{r['to']:.0f} | {r['scored']:.0f} | " + format_row(r), flush=True
                    )
        counts = [int(w) for w in args.workers.split(",") if w]
        if counts:
            print(f"\ntrials/s against workers ({args.worker_trials} trials per run, {os.cpu_count()} cores)")
            print(
                "| storage | "
                + " | ".join(f"{w} worker{'s' * (w > 1)}" for w in counts)
                + " |\n|---|"
                + "---:|" * len(counts)
            )
            for kind in kinds:
                rates = []
                for w in counts:
                    with fresh_storage(kind, Path(tmp), args.server, args.user) as url:
                        run_search(url, args, args.worker_trials, w)
                        rates.append(trials_per_second(finished_trials(url)))
                figures[f"workers-{kind}"] = dict(zip(counts, rates))
                print(f"| {kind} | " + " | ".join(f"{r:.2f}" for r in rates) + " |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
