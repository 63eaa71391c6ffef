"""What a real search recommends with each score, judged as users run it.

A user distils into a student smaller than the teacher, often from a teacher of another family.
So each development benchmark is searched under a parameter budget that leaves the teacher out,
with two teachers (``--protocols``):

* ``inside``: the benchmark's own teacher (NAS-Bench-201: the best CIFAR-100 cell, 1.29M
  parameters; NAS-Bench-Macro: ``22222222``, 2.93M; S0: ResNet-110, 1.7M, the teacher its students
  were distilled from, itself outside the space), the budget below it;
* ``resnet56``: a CIFAR ResNet-56 teacher (0.86M), from outside the space, the same budget;
* ``trained``: the benchmark's own teacher with trained weights (``--teacher-weights BENCH=DIR``,
  e.g. trained by ``diswot train`` on the stored CIFAR images), the budget below it.

Budgets (``BUDGETS``): NAS-Bench-201 under 500K parameters, NAS-Bench-Macro under 1M, S0 under 400K. For each
benchmark, protocol, score and seed, one whole search runs in this process with
:func:`~diswot.pipeline.run_search` on SQLite: the reference sample, ``--trials`` trials of the
evolutionary sampler and the pick stage, on the real CIFAR probe images of ``tests/data/cifar``
(CIFAR-100 for NAS-Bench-201 and S0, CIFAR-10 for NAS-Bench-Macro). No ground truth is read until the
recommended student is looked up. Reported: the recommended student's accuracy (NAS-Bench-201
CIFAR-100 validation, NAS-Bench-Macro CIFAR-10 test, S0 CIFAR-100 distilled from ResNet-110), mean ± std over the seeds, beside the best
student within the budget and the largest one that fits (by parameters, and by FLOPs): what a
user who "takes the largest student that fits" gets without any search.

Finished studies are kept in ``--work`` and reused, so the benchmark resumes where it stopped;
``--previous`` reads the picks of earlier results JSON (their studies may be gone with the machine
that ran them), so more seeds can be added to a run.

    python benchmarks/bench_cross_search.py --benches nb201,macro --protocols inside,resnet56 \
        --proxies diswot-balance,diswot --seeds 0,1,2,3,4 --trials 300 --json benchmarks/results/cross-search.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from diswot.pipeline import SearchConfig, recommended_trial, run_search
from diswot.pipeline._choices import DEFAULT_INIT_DRAW, INIT_DRAWS
from diswot.pipeline.benchmark_truth import benchmark_truth
from diswot.proxies import arch_flops
from diswot.spaces import get_space, parse_count
from diswot.pipeline.teachers import list_teachers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cross_ranking import BENCHES, ROOT, imagefolder, teacher_arch  # noqa: E402

#: the parameter budget of each benchmark's searches: below its own teacher (S0: about its median
#: student, 380K of 84K-667K; its teacher, ResNet-110, has 1.7M)
BUDGETS = {"nb201": "500K", "macro": "1M", "s0": "400K"}


#: ``--teacher-weights``: benchmark -> its own teacher trained (``diswot train``'s run folder), for
#: the ``trained`` protocol
TRAINED: dict[str, Path] = {}
#: ``--init-draw``: how the searches draw their inits (``layer``: each layer from its own seeded generator)
INIT_DRAW = {"draw": DEFAULT_INIT_DRAW}


def teacher_of(bench: str, protocol: str) -> str:
    """The ``--teacher`` of a protocol: the benchmark's own teacher (``inside``, and ``trained`` with
    the weights of ``--teacher-weights``) or a registered one."""
    b = BENCHES[bench]
    if protocol not in ("inside", "trained"):
        return protocol
    if b.teacher in list_teachers():  # S0: the ground truth's own teacher, from outside the space
        return b.teacher
    space = get_space(b.space)
    return f"{b.space}:{space.encode(teacher_arch(b, space))}"


def flops_of(bench: str, space: Any, arch: Any) -> float:
    """A student's FLOPs: NAS-Bench-Macro's table, S0's counted on the meta device, else analytic
    (NAS-Bench-201: the cell's op counts, which rank the cells as their parameters do)."""
    if bench == "macro":
        from diswot.pipeline.benchmark_truth import macro_table

        return float(macro_table()[space.encode(arch)]["flops"])  # type: ignore[arg-type]
    if bench == "s0":
        return float(arch_flops(space, arch, BENCHES[bench].num_classes, 32))
    ops = space.encode(arch)
    return float(ops.count("nor_conv_3x3") * 9 + ops.count("nor_conv_1x1"))


def search(
    bench: str, protocol: str, proxy: str, seed: int, trials: int, work: Path, budget: str | None = None
) -> tuple[str, float]:
    """The recommended student of one (resumable) search, and the seconds it took."""
    b = BENCHES[bench]
    teacher = teacher_of(bench, protocol)
    config = SearchConfig(
        space=b.space,
        teacher=teacher,
        proxy=proxy,
        dataset="imagefolder",
        data_dir=str(imagefolder(b, work.parent / "cifar-imagefolders")),
        image_size=32,
        num_classes=b.num_classes,
        seed=seed,
        device="cpu",
        max_params=parse_count(budget or BUDGETS[bench]),
        teacher_weights=str(TRAINED[bench]) if protocol == "trained" else None,
        init_draw=INIT_DRAW["draw"],
    )
    work.mkdir(parents=True, exist_ok=True)
    other = "" if budget in (None, BUDGETS[bench]) else f"-{budget}"  # a budget beside the benchmark's own
    drawn = "-layer" if INIT_DRAW["draw"] == "layer" else ""  # the studies of one stream were named without it
    url = f"sqlite:///{work / f'{bench}{other}-{protocol}-{proxy}-{seed}-{trials}{drawn}.db'}"
    start = time.perf_counter()
    study = optuna.create_study(storage=url, study_name="s", load_if_exists=True, directions=["maximize"])
    left = trials - len(study.trials)
    if left > 0 or recommended_trial(study) is None:
        study = run_search(config, url, n_trials=max(left, 1), study_name="s", note_every=0)
    best = recommended_trial(study)
    assert best is not None
    return str(best.user_attrs["arch"]), time.perf_counter() - start


Known = dict[tuple[str, str, str, str, int, int], tuple[str, float]]


def read_previous(paths: list[Path]) -> Known:
    """The picks of earlier runs' results JSON, by (bench, budget, protocol, proxy, seed, trials): their
    searches are not run again (their studies may be gone with the machine that ran them)."""
    known: Known = {}
    for path in paths:
        doc = json.loads(path.read_text())
        words = doc["command"].split()
        seeds = [int(x) for x in words[words.index("--seeds") + 1].split(",")]
        for row in doc["rows"]:
            for seed, arch, sec in zip(seeds, row["picks"], row["seconds"]):
                key = (row["bench"], row["budget"], row["protocol"], row["proxy"], seed, doc["trials"])
                known[key] = (arch, sec)
    return known


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--benches", default="nb201,macro")
    p.add_argument("--protocols", default="inside,resnet56", help="inside: the benchmark's teacher; else a teacher")
    p.add_argument("--proxies", default="diswot-balance,diswot")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--trials", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", type=Path, default=ROOT / "benchmarks" / ".data" / "cross-search")
    p.add_argument("--json", type=Path)
    p.add_argument(
        "--teacher-weights",
        nargs="*",
        default=[],
        metavar="BENCH=DIR",
        help="the benchmark's own teacher trained, for --protocols trained",
    )
    p.add_argument("--previous", type=Path, nargs="*", default=[], help="results JSON whose picks are reused")
    p.add_argument(
        "--budgets",
        nargs="*",
        default=[],
        metavar="BENCH=B1,B2",
        help="parameter budgets of a benchmark's searches instead of its own (BUDGETS), e.g. s0=200K,300K",
    )
    p.add_argument(
        "--init-draw",
        choices=INIT_DRAWS,
        default=DEFAULT_INIT_DRAW,
        help="layer: each layer's init from its own seeded generator; stream: one generator (the runs before)",
    )
    args = p.parse_args(argv)
    INIT_DRAW["draw"] = args.init_draw
    for item in args.teacher_weights:
        bench_name, _, folder = item.partition("=")
        TRAINED[bench_name] = Path(folder)
    known = read_previous(args.previous)
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    budgets = {bench: [BUDGETS[bench]] for bench in BUDGETS}
    for item in args.budgets:
        bench_name, _, listed = item.partition("=")
        budgets[bench_name] = listed.split(",")
    rows: list[dict[str, Any]] = []
    for bench in args.benches.split(","):
        for budget in budgets[bench]:
            rows += _searches(bench, budget, args, known)
    _over_budgets(rows)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"command": " ".join(sys.argv), "trials": args.trials, "init_draw": args.init_draw, "rows": rows},
                indent=1,
            )
        )
    return 0


def _over_budgets(rows: list[dict[str, Any]]) -> None:
    """For a score searched under several budgets: its mean accuracy over them beside the largest
    students', and its margin over the better of the two largest in each budget (worst, mean)."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["bench"], row["protocol"], row["proxy"]), []).append(row)
    for (bench, protocol, proxy), group in groups.items():
        if len(group) < 2:
            continue
        margins = [r["mean"] - max(r["budget_params_largest"], r["budget_flops_largest"]) for r in group]
        mean = {
            k: float(np.mean([r[k] for r in group]))
            for k in ("mean", "budget_params_largest", "budget_flops_largest", "budget_best")
        }
        print(
            f"{bench} {protocol} {proxy} over {len(group)} budgets: mean {mean['mean']:.2f} (params-largest "
            f"{mean['budget_params_largest']:.2f}, FLOPs-largest {mean['budget_flops_largest']:.2f}, best "
            f"{mean['budget_best']:.2f}); against the better of the two largest: worst {min(margins):+.2f}, "
            f"mean {np.mean(margins):+.2f}"
        )


def _tied(baseline: dict[str, Any], count: str) -> str:
    """`` (N tied, mean A)`` when several students are as large as the largest, else nothing."""
    n = baseline[f"{count}_largest_tied"]
    return f" ({n} as large, mean {baseline[f'{count}_largest_tied_mean']:.2f})" if n > 1 else ""


def _searches(bench: str, budget: str, args: argparse.Namespace, known: Known) -> list[dict[str, Any]]:
    """Every protocol's and score's searches of ``bench`` under ``budget``: one row each."""
    rows: list[dict[str, Any]] = []
    b = BENCHES[bench]
    space = get_space(b.space)
    truth = benchmark_truth(b.truth, space)
    acc = dict(zip(truth.names, truth.accuracy.tolist()))
    limit = parse_count(budget)
    within = [a for a in truth.archs if space.count_params(a, b.num_classes) <= limit]
    by_params = max(within, key=lambda a: space.count_params(a, b.num_classes))
    flops = {space.encode(a): flops_of(bench, space, a) for a in within}
    by_flops = max(within, key=lambda a: flops[space.encode(a)])
    best = max(acc[space.encode(a)] for a in within)
    # students as large as the largest (NAS-Bench-201's cells of the same ops, S0's of the same depths):
    # the first is "the largest", the mean of all says what a user who takes any of them gets
    tied_params = [
        a for a in within if space.count_params(a, b.num_classes) == space.count_params(by_params, b.num_classes)
    ]
    tied_flops = [a for a in within if flops[space.encode(a)] == flops[space.encode(by_flops)]]
    baseline = {
        "best": best,
        "params_largest": acc[space.encode(by_params)],
        "flops_largest": acc[space.encode(by_flops)],
        "n_within": len(within),
        "params_largest_tied": len(tied_params),
        "params_largest_tied_mean": float(np.mean([acc[space.encode(a)] for a in tied_params])),
        "flops_largest_tied": len(tied_flops),
        "flops_largest_tied_mean": float(np.mean([acc[space.encode(a)] for a in tied_flops])),
    }
    print(
        f"{bench} under {budget} params ({len(within)} students): best {best:.2f}, "
        f"params-largest {baseline['params_largest']:.2f}{_tied(baseline, 'params')}, "
        f"FLOPs-largest {baseline['flops_largest']:.2f}{_tied(baseline, 'flops')}"
    )
    for protocol in args.protocols.split(","):
        for proxy in args.proxies.split(","):
            picks = [
                known.get((bench, budget, protocol, proxy, int(s), args.trials))
                or search(bench, protocol, proxy, int(s), args.trials, args.work, budget)
                for s in args.seeds.split(",")
            ]
            accs = [acc[a] for a, _ in picks]
            rank = [int(sum(acc[space.encode(a)] > acc[p] for a in within)) + 1 for p, _ in picks]
            rows.append(
                {
                    "bench": bench,
                    "budget": budget,
                    "protocol": protocol,
                    "teacher": teacher_of(bench, protocol),
                    "proxy": proxy,
                    "mean": float(np.mean(accs)),
                    "std": float(np.std(accs)),
                    "regret": float(best - np.mean(accs)),
                    "vs_params_largest": float(np.mean(accs) - baseline["params_largest"]),
                    "picks": [a for a, _ in picks],
                    "accuracies": accs,
                    "ranks_within_budget": rank,
                    "seconds": [t for _, t in picks],
                    **{f"budget_{k}": v for k, v in baseline.items()},
                }
            )
            print(
                f"  {protocol:9s} {proxy:16s} {np.mean(accs):6.2f} ± {np.std(accs):4.2f}  regret "
                f"{best - np.mean(accs):5.2f}  median rank {int(np.median(rank))} of {len(within)}",
                flush=True,
            )
    return rows


if __name__ == "__main__":
    sys.exit(main())
