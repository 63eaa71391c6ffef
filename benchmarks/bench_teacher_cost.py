"""A teacher's cost: once per study (build, discovery, the teacher side) against once per candidate.

Two teachers, the same students: timm's ``convnext_atto`` at its own 224 px and the CIFAR
``resnet56`` at 32 px; the students are S2-CIFAR architectures under 1M parameters, drawn with a
fixed seed and scored at 32 px on the same probe batch by both studies. Prints, per teacher:

* ``build``: building the teacher and finding its features and classifier (once per study);
* ``teacher side``: the proxy's ``prepare`` on the teacher's own probe batch (once per study and repeat);
* ``per candidate``: the median wall time of ``Scorer.score`` (one student forward at 32 px).

The per-candidate cost must not depend on the teacher: the last column is its ratio to the
``resnet56`` study's.

    python benchmarks/bench_teacher_cost.py                     # diswot and the default score, 20 students
    python benchmarks/bench_teacher_cost.py --students 50 --batch-size 64 --proxies diswot
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Hashable

import torch

from diswot.pipeline.config import SearchConfig
from diswot.pipeline.data import dataset_info, network_batches, probe_batches
from diswot.pipeline.assembly import draw_reference
from diswot.pipeline.scoring import Scorer
from diswot.pipeline.teachers import load_teacher
from diswot.proxies import make_proxy, resolve_semantic_mode
from diswot.spaces import Limits, get_space

TEACHERS = ("resnet56", "timm:convnext_atto")
DEFAULT_PROXY = next(f.default for f in fields(SearchConfig) if f.name == "proxy")


def measure(teacher: str, proxy_name: str, archs: list[Hashable], batch_size: int, repeats: int) -> dict[str, Any]:
    """Seconds to build the teacher, to run its side once, and per candidate (median over ``archs``)."""
    space = get_space("s2-cifar")
    info = dataset_info("synthetic", image_size=space.image_size)
    start = time.perf_counter()
    built = load_teacher(teacher, 100, probe_size=info.image_size)
    build = time.perf_counter() - start
    size = built.image_size(info.image_size)
    batches = probe_batches(
        dataset="synthetic", data_dir=None, batch_size=batch_size, seed=0, num_classes=100, info=info
    )
    teacher_batches = network_batches(batches, dataset="synthetic", data_dir=None, seed=0, info=info, image_size=size)
    semantic = resolve_semantic_mode("auto", built.network.classifier.in_features, None)
    proxy = make_proxy(proxy_name, {"semantic": semantic})
    sides = []
    for _ in range(repeats):
        start = time.perf_counter()
        scorer = Scorer(
            space=space,
            proxy=proxy,
            batches=batches,
            teacher_batches=teacher_batches,
            teacher=built.network,
            num_classes=100,
        )
        sides.append(time.perf_counter() - start)
    if proxy.reference_terms:  # rank against the students themselves: the cost is the same
        from diswot.pipeline.reference import build_reference

        scorer.reference = build_reference(scorer, archs[:8])
    scorer.score(archs[0])  # warm-up
    per = [scorer.score(a).seconds for a in archs]
    return {
        "teacher": teacher,
        "proxy": proxy_name,
        "teacher_px": size,
        "build_s": build,
        "teacher_side_s": statistics.median(sides),
        "candidate_ms": 1000 * statistics.median(per),
        "candidate_ms_iqr": 1000 * (statistics.quantiles(per, n=4)[2] - statistics.quantiles(per, n=4)[0]),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--students", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3, help="teacher-side runs (median)")
    p.add_argument("--proxies", default=f"diswot,{DEFAULT_PROXY}")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, help="write the rows here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    space = get_space("s2-cifar")
    archs = draw_reference(space, Limits(max_params=1_000_000), 100, size=args.students, seed=0)
    rows = []
    for proxy in args.proxies.split(","):
        for teacher in TEACHERS:
            rows.append(measure(teacher, proxy, archs, args.batch_size, args.repeats))
    base = {r["proxy"]: r["candidate_ms"] for r in rows if r["teacher"] == TEACHERS[0]}
    print(
        f"S2-CIFAR students under 1M params at 32 px, {len(archs)} students, batch {args.batch_size}, {args.threads} thread(s)"
    )
    print(
        f"{'proxy':22} {'teacher':20} {'px':>4} {'build s':>8} {'teacher side s':>15} {'per candidate ms':>17} {'vs resnet56':>12}"
    )
    for r in rows:
        r["candidate_vs_resnet56"] = r["candidate_ms"] / base[r["proxy"]]
        print(
            f"{r['proxy']:22} {r['teacher']:20} {r['teacher_px']:>4} {r['build_s']:>8.2f} {r['teacher_side_s']:>15.3f} "
            f"{r['candidate_ms']:>11.1f} ± {r['candidate_ms_iqr'] / 2:<4.1f} {r['candidate_vs_resnet56']:>12.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
