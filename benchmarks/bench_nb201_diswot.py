"""DisWOT's ranking on NAS-Bench-201 against NASLib's validation accuracy, per init and term.

The teacher is the best NAS-Bench-201 cell (the paper's choice, B.2); students are the
architectures of ``tests/data/nb201-zc-proxies-725.json`` (a seeded subset with ``--limit``), each
scored on one fixed batch of 64 real CIFAR test images (``tests/data/cifar``). Prints Spearman and
Kendall of ``diswot``, its semantic and its relation term, for every ``--inits``, next to the
paper's figures (Table 6: Spearman 0.61 CIFAR-10, 0.72 CIFAR-100; Table 5: 65.74% semantic,
56.46% relation). This is the measurement behind the default ``--init gaussian``.

    python benchmarks/bench_nb201_diswot.py --datasets cifar10,cifar100 --limit 150 --inits gaussian,kaiming,torch
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from diswot.proxies import Batch, get_proxy
from diswot.pipeline.scoring import Scorer
from diswot.spaces import get_space, naslib_to_nb201

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
BEST_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
CIFAR = {
    "cifar10": ("cifar10-test-first1017.npz", "labels", 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ("cifar100-test-first916.npz", "fine_labels", 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
PAPER = {"cifar10": 0.61, "cifar100": 0.72}


def probe_batch(dataset: str, size: int, seed: int) -> Batch:
    """``size`` real test images of ``dataset``, normalised, chosen with ``seed``."""
    name, key, k, mean, std = CIFAR[dataset]
    z = np.load(DATA / "cifar" / name)
    x = torch.tensor(z["images"]).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:size]
    return Batch(x[idx], torch.tensor(z[key])[idx].long(), k)


def main() -> None:
    """Score the subset for every init and print the correlations."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="cifar10,cifar100")
    p.add_argument("--limit", type=int, default=150)
    p.add_argument("--inits", default="gaussian,kaiming,torch")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json")
    args = p.parse_args()
    space = get_space("nb201")
    table = json.loads((DATA / "nb201-zc-proxies-725.json").read_text())
    results = {}
    print(
        f"{'dataset':<9} {'init':<9} {'n':>4} {'diswot rho':>10} {'tau':>6} {'semantic':>9} {'relation':>9} {'paper':>6} {'s/arch':>7}"
    )
    for dataset in args.datasets.split(","):
        items = list(table[dataset].items())
        pick = np.random.RandomState(args.seed).choice(len(items), min(args.limit, len(items)), replace=False)
        archs = [(naslib_to_nb201(ast.literal_eval(items[i][0])), items[i][1]["val_accuracy"]) for i in pick]
        archs = [(a, acc) for a, acc in archs if a.is_connected()]
        batch = probe_batch(dataset, args.batch_size, args.seed)
        teacher = space.build(space.decode(BEST_CELL), num_classes=batch.num_classes)
        for init in args.inits.split(","):
            scorer = Scorer(
                space=space,
                proxy=get_proxy("diswot", semantic="channel"),
                batches=[batch],
                teacher=teacher,
                num_classes=batch.num_classes,
                init=init,
                seed=args.seed,
            )
            t = time.perf_counter()
            rows = [(acc, scorer.score(a)) for a, acc in archs]
            elapsed = (time.perf_counter() - t) / len(rows)
            acc = [r[0] for r in rows]
            total = [r[1].score for r in rows]
            sem = [-r[1].terms["semantic"] for r in rows]
            rel = [-r[1].terms["relation"] for r in rows]
            r = {
                "n": len(rows),
                "spearman": spearmanr(acc, total).statistic,
                "kendall": kendalltau(acc, total).statistic,
                "semantic_spearman": spearmanr(acc, sem).statistic,
                "relation_spearman": spearmanr(acc, rel).statistic,
                "seconds_per_arch": elapsed,
            }
            results[f"{dataset}/{init}"] = r
            print(
                f"{dataset:<9} {init:<9} {r['n']:>4} {r['spearman']:>10.3f} {r['kendall']:>6.3f} {r['semantic_spearman']:>9.3f} "
                f"{r['relation_spearman']:>9.3f} {PAPER[dataset]:>6.2f} {elapsed:>7.2f}",
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
