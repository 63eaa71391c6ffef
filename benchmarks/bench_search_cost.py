"""What a short search costs, everything included, against the paper's naive pattern on the same students.

A user's first search is a short one. This runs a whole search in this process with
:func:`~diswot.pipeline.run_search` (a new SQLite study: teacher, probe batch, the reference sample of
a rank-aggregated score, the trials, the pick stage) and then scores the distinct students that
search evaluated with the paper's two listings called as printed
(:func:`~diswot.proxies._diswot.naive_diswot`: teacher and student forward and backward for
Listing 1, both forward again for Listing 2, for every candidate). The ratio naive / search is the
figure; each proxy is timed in the same run. Times are this process's CPU seconds
(``time.process_time``, one compute thread), which a machine shared with other jobs disturbs far
less than wall time.

    python benchmarks/bench_search_cost.py --space s0 --teacher resnet110 --trials 24 --proxies diswot,default
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch

from diswot.pipeline import SearchConfig, run_search
from diswot.pipeline.config import DEFAULT_PROXY
from diswot.pipeline.init import initialise
from diswot.pipeline.assembly import make_scoring
from diswot.pipeline.teachers import build_teacher
from diswot.proxies._diswot import naive_diswot


def search_seconds(config: SearchConfig, trials: int, folder: Path) -> tuple[float, list[str], int]:
    """CPU seconds of a whole new search, the distinct students it scored, and its scorings."""
    url = f"sqlite:///{folder / (config.proxy + '.db')}"
    start = time.process_time()
    study = run_search(config, url, n_trials=trials, study_name="cost", progress=False)
    seconds = time.process_time() - start
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    archs = list(dict.fromkeys(str(t.user_attrs["arch"]) for t in done))
    return seconds, archs, len(archs)


def naive_seconds(config: SearchConfig, archs: list[str]) -> float:
    """CPU seconds of the paper's listings on each of ``archs`` (teacher recomputed each time)."""
    setup = make_scoring(config.__class__(**{**config.__dict__, "proxy": "diswot"}))
    teacher = build_teacher(config.teacher, setup.num_classes)
    torch.manual_seed(1)
    initialise(teacher, config.init)
    teacher.train()
    batch = setup.scorer.batches[0]
    start = time.process_time()
    for text in archs:
        torch.manual_seed(0)
        student = initialise(setup.space.build(setup.space.decode(text), num_classes=setup.num_classes), config.init)
        naive_diswot(teacher, student.train(), batch, semantic=setup.semantic)
    return time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="s0")
    p.add_argument("--teacher", default="resnet110")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--trials", type=int, default=24)
    p.add_argument("--proxies", default=f"diswot,{DEFAULT_PROXY}", help="comma-separated; 'default' is the default")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for proxy in args.proxies.split(","):
            proxy = DEFAULT_PROXY if proxy == "default" else proxy
            config = SearchConfig(
                space=args.space,
                teacher=args.teacher,
                dataset=args.dataset,
                batch_size=args.batch_size,
                proxy=proxy,
                device="cpu",
            )
            seconds, archs, n = search_seconds(config, args.trials, Path(tmp))
            naive = naive_seconds(config, archs)
            rows.append(
                {"proxy": proxy, "search_s": seconds, "students": n, "naive_s": naive, "ratio": naive / seconds}
            )
    print(
        f"{args.space}, teacher {args.teacher}, {args.trials} trials, batch {args.batch_size}, {args.threads} thread(s)"
    )
    print(f"{'score':28s} {'students':>8s} {'search cpu s':>12s} {'naive cpu s':>11s} {'naive/search':>12s}")
    for r in rows:
        print(f"{r['proxy']:28s} {r['students']:8d} {r['search_s']:12.1f} {r['naive_s']:11.1f} {r['ratio']:11.1f}x")
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
