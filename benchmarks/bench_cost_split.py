"""Where the default's scoring of one candidate spends its time, beside one bare forward pass.

For seeded random students of a space (``bench_families.py``'s draws), the fastest of ``--reps``
timings of each part of what the search's scorer does per candidate (``Scorer.raw``): the student's
build and init, the batch-64 forward with the FLOP hooks, DisWOT's similarity terms from that
forward, SynFlow's batch-of-one pass (as the scorer runs it, and read from the weights' gradients
throughout, as before grouped convolutions had it read from the layers' output gradients); and the
whole ``raw`` call, against a bare forward of the same student in inference mode. Synthetic probe
batch, one thread unless told.

    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/bench_cost_split.py --space macro --students 5 --reps 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch

from diswot.pipeline import SearchConfig
from diswot.pipeline.assembly import make_scoring
from diswot.proxies._flops import FlopHooks
from diswot.proxies._synflow import _flow, absolute_network, synaptic_flow

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_families import TEACHERS, _students  # noqa: E402  (the same students and teachers)


def _ms(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return 1000 * (time.perf_counter() - start)


def one_student(scorer: Any, arch: Any, reps: int) -> dict[str, float]:
    """The fastest of ``reps`` timings of each part for one student, in ms."""
    batch, ctx = scorer.batches[0], scorer.context(0)
    with torch.inference_mode():
        scorer.build(arch)(batch.images)  # warm-up
    best: dict[str, list[float]] = {}
    for _ in range(reps):
        parts = {"build and init": _ms(partial(scorer.build, arch))}
        net = scorer.build(arch)
        with torch.inference_mode():
            parts["bare forward"] = _ms(partial(net, batch.images))
        with FlopHooks(net), torch.inference_mode():
            start = time.perf_counter()
            out = net.forward_all(batch.images)
            parts["forward with FLOP hooks"] = 1000 * (time.perf_counter() - start)
        parts["similarity terms"] = _ms(partial(scorer.proxy.similarity_terms, ctx, out, batch))
        parts["SynFlow pass"] = _ms(partial(synaptic_flow, scorer.build(arch), batch.images))
        parts["SynFlow, weight grads"] = _ms(partial(_weight_flow, scorer.build(arch), batch.images))
        parts["the scorer's raw terms"] = _ms(partial(scorer.raw, arch))
        for name, value in parts.items():
            best.setdefault(name, []).append(value)
    return {name: min(values) for name, values in best.items()}


def _weight_flow(net: torch.nn.Module, images: torch.Tensor) -> float:
    """SynFlow's S read from the weights' gradients in every network (float64 where float32 overflows)."""
    net = absolute_network(net).float()
    s = _flow(net, images, torch.float32)
    return s if s < float("inf") else _flow(net.double(), images, torch.float64)


def split(space: str, students: int, reps: int) -> dict[str, float]:
    """Mean over the students of the fastest timing of each part, in ms."""
    scorer = make_scoring(
        SearchConfig(space=space, teacher=TEACHERS.get(space, "resnet56"), dataset="synthetic", batch_size=64)
    ).scorer
    rows = [one_student(scorer, arch, reps) for arch in _students(space, students)]
    return {name: statistics.mean(r[name] for r in rows) for name in rows[0]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="macro")
    p.add_argument("--students", type=int, default=5)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = split(args.space, args.students, args.reps)
    for name, value in result.items():
        print(f"{name:24s} {value:8.1f} ms  {value / result['bare forward']:.2f}x the bare forward")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"space": args.space, "students": args.students, "ms": result}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
