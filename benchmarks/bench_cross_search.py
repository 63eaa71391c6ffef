"""What a real search recommends with each score, judged as users run it.

A user distils into a student smaller than the teacher, often from a teacher of another family.
So each development benchmark is searched under a parameter budget that leaves the teacher out,
with two teachers (``--protocols``):

* ``inside``: the benchmark's own teacher (NAS-Bench-201: the best CIFAR-100 cell, 1.29M
  parameters; NAS-Bench-Macro: ``22222222``, 2.93M), the budget below it;
* ``resnet56``: a CIFAR ResNet-56 teacher (0.86M), from outside the space, the same budget;
* ``trained``: the benchmark's own teacher with trained weights (``--teacher-weights BENCH=DIR``,
  e.g. trained by ``diswot train`` on the stored CIFAR images), the budget below it.

Budgets (``BUDGETS``): NAS-Bench-201 under 500K parameters, NAS-Bench-Macro under 1M. For each
benchmark, protocol, score and seed, one whole search runs in this process with
:func:`~diswot.pipeline.run_search` on SQLite: the reference sample, ``--trials`` trials of the
evolutionary sampler and the pick stage, on the real CIFAR probe images of ``tests/data/cifar``
(CIFAR-100 for NAS-Bench-201, CIFAR-10 for NAS-Bench-Macro). No ground truth is read until the
recommended student is looked up. Reported: the recommended student's accuracy (NAS-Bench-201
CIFAR-100 validation, NAS-Bench-Macro CIFAR-10 test), mean ± std over the seeds, beside the best
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
from diswot.pipeline.benchmark_truth import benchmark_truth
from diswot.spaces import get_space, parse_count

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cross_ranking import BENCHES, ROOT, imagefolder, teacher_arch  # noqa: E402

#: the parameter budget of each benchmark's searches: below its own teacher
BUDGETS = {"nb201": "500K", "macro": "1M"}


#: ``--teacher-weights``: benchmark -> its own teacher trained (``diswot train``'s run folder), for
#: the ``trained`` protocol
TRAINED: dict[str, Path] = {}


def teacher_of(bench: str, protocol: str) -> str:
    """The ``--teacher`` of a protocol: the benchmark's own teacher (``inside``, and ``trained`` with
    the weights of ``--teacher-weights``) or a registered one."""
    b = BENCHES[bench]
    if protocol not in ("inside", "trained"):
        return protocol
    space = get_space(b.space)
    return f"{b.space}:{space.encode(teacher_arch(b, space))}"


def flops_of(bench: str, space: Any, arch: Any) -> float:
    """A student's FLOPs: NAS-Bench-Macro's table, else analytic (NAS-Bench-201: the cell's op counts,
    which rank the cells as their parameters do)."""
    if bench == "macro":
        from diswot.pipeline.benchmark_truth import macro_table

        return float(macro_table()[space.encode(arch)]["flops"])  # type: ignore[arg-type]
    ops = space.encode(arch)
    return float(ops.count("nor_conv_3x3") * 9 + ops.count("nor_conv_1x1"))


def search(bench: str, protocol: str, proxy: str, seed: int, trials: int, work: Path) -> tuple[str, float]:
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
        max_params=parse_count(BUDGETS[bench]),
        teacher_weights=str(TRAINED[bench]) if protocol == "trained" else None,
    )
    work.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{work / f'{bench}-{protocol}-{proxy}-{seed}-{trials}.db'}"
    start = time.perf_counter()
    study = optuna.create_study(storage=url, study_name="s", load_if_exists=True, directions=["maximize"])
    left = trials - len(study.trials)
    if left > 0 or recommended_trial(study) is None:
        study = run_search(config, url, n_trials=max(left, 1), study_name="s", note_every=0)
    best = recommended_trial(study)
    assert best is not None
    return str(best.user_attrs["arch"]), time.perf_counter() - start


Known = dict[tuple[str, str, str, int, int], tuple[str, float]]


def read_previous(paths: list[Path]) -> Known:
    """The picks of earlier runs' results JSON, by (bench, protocol, proxy, seed, trials): their
    searches are not run again (their studies may be gone with the machine that ran them)."""
    known: Known = {}
    for path in paths:
        doc = json.loads(path.read_text())
        words = doc["command"].split()
        seeds = [int(x) for x in words[words.index("--seeds") + 1].split(",")]
        for row in doc["rows"]:
            for seed, arch, sec in zip(seeds, row["picks"], row["seconds"]):
                known[(row["bench"], row["protocol"], row["proxy"], seed, doc["trials"])] = (arch, sec)
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
    args = p.parse_args(argv)
    for item in args.teacher_weights:
        bench_name, _, folder = item.partition("=")
        TRAINED[bench_name] = Path(folder)
    known = read_previous(args.previous)
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows: list[dict[str, Any]] = []
    for bench in args.benches.split(","):
        b = BENCHES[bench]
        space = get_space(b.space)
        truth = benchmark_truth(b.truth, space)
        acc = dict(zip(truth.names, truth.accuracy.tolist()))
        limit = parse_count(BUDGETS[bench])
        within = [a for a in truth.archs if space.count_params(a, b.num_classes) <= limit]
        by_params = max(within, key=lambda a: space.count_params(a, b.num_classes))
        by_flops = max(within, key=lambda a: flops_of(bench, space, a))
        best = max(acc[space.encode(a)] for a in within)
        baseline = {
            "best": best,
            "params_largest": acc[space.encode(by_params)],
            "flops_largest": acc[space.encode(by_flops)],
            "n_within": len(within),
        }
        print(
            f"{bench} under {BUDGETS[bench]} params ({len(within)} students): best {best:.2f}, "
            f"params-largest {baseline['params_largest']:.2f}, FLOPs-largest {baseline['flops_largest']:.2f}"
        )
        for protocol in args.protocols.split(","):
            for proxy in args.proxies.split(","):
                picks = [
                    known.get((bench, protocol, proxy, int(s), args.trials))
                    or search(bench, protocol, proxy, int(s), args.trials, args.work)
                    for s in args.seeds.split(",")
                ]
                accs = [acc[a] for a, _ in picks]
                rank = [int(sum(acc[space.encode(a)] > acc[p] for a in within)) + 1 for p, _ in picks]
                rows.append(
                    {
                        "bench": bench,
                        "budget": BUDGETS[bench],
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
    if args.json:
        args.json.write_text(json.dumps({"command": " ".join(sys.argv), "trials": args.trials, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
