"""SynFlow's pass in float32 (with its float64 fallback) against float64 throughout, per space.

For ``--students`` seeded random students of each space (Gaussian init, as the scorer builds
them), times one bare forward pass at batch 64 in inference mode, SynFlow as the default score
runs it (:func:`~diswot.proxies._synflow.synaptic_flow`: float32, float64 again where float32
overflows) and SynFlow in float64 throughout (the previous implementation), back to back, the
fastest of ``--reps`` kept; prints each pass as a multiple of the forward, the students whose
float32 pass overflowed, and the largest difference in ln S between the two.

    python benchmarks/bench_synflow_precision.py --spaces s0,nb201,macro --students 10 --reps 3
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import optuna
import torch

from diswot.pipeline.init import initialise
from diswot.proxies._synflow import _flow, absolute_network, synaptic_flow
from diswot.proxies._util import fresh_copy
from diswot.spaces import get_space

#: input size of each space's students
SIZES = {"autoformer-ti": 224, "pit-ti": 224, "s2-imagenet": 224}


def synflow_float64(net: torch.nn.Module, images: torch.Tensor) -> float:
    """SynFlow in float64 throughout (the implementation before the float32 pass)."""
    return _flow(absolute_network(net).double(), images, torch.float64)


def _ms(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn(*args)
    return 1000 * (time.perf_counter() - start), out


def measure(space_name: str, students: int, reps: int) -> dict[str, Any]:
    """Mean ms of each pass and the ratios, over seeded random students of ``space_name``."""
    space = get_space(space_name)
    size = SIZES.get(space_name, 32)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    images = torch.randn(64, 3, size, size, generator=torch.Generator().manual_seed(0))
    rows: dict[str, list[float]] = {"forward": [], "float32": [], "float64": []}
    overflowed, worst = 0, 0.0
    for i in range(students):
        trial = study.ask()
        arch = space.suggest(trial)
        study.tell(trial, 0.0)
        torch.manual_seed(i)
        net = space.build(arch, num_classes=100).train()
        initialise(net, "gaussian")
        with torch.inference_mode():
            net(images)  # warm-up
        best = {k: math.inf for k in rows}
        for _ in range(reps):
            with torch.inference_mode():
                best["forward"] = min(best["forward"], _ms(net, images)[0])
            t32, s32 = _ms(synaptic_flow, fresh_copy(net), images)
            t64, s64 = _ms(synflow_float64, fresh_copy(net), images)
            best["float32"], best["float64"] = min(best["float32"], t32), min(best["float64"], t64)
        worst = max(worst, abs(math.log1p(s32) - math.log1p(s64)))
        overflowed += math.log1p(s64) > math.log(torch.finfo(torch.float32).max)
        for k, v in best.items():
            rows[k].append(v)
    out: dict[str, Any] = {k: statistics.mean(v) for k, v in rows.items()}
    out.update(
        space=space_name,
        students=students,
        overflowed=overflowed,
        max_abs_diff_ln_s=worst,
        float32_per_forward=out["float32"] / out["forward"],
        float64_per_forward=out["float64"] / out["forward"],
    )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spaces", default="s0,nb201,macro")
    p.add_argument("--students", type=int, default=10)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results = []
    for name in args.spaces.split(","):
        r = measure(name, args.students, args.reps)
        results.append(r)
        print(
            f"{name:14s} forward {r['forward']:8.1f} ms; SynFlow float32 {r['float32_per_forward']:.3f}x, "
            f"float64 {r['float64_per_forward']:.3f}x the forward; {r['overflowed']}/{r['students']} beyond "
            f"float32 (computed again in float64); max |d ln S| {r['max_abs_diff_ln_s']:.1e}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "reps": args.reps, "results": results}, indent=1))


if __name__ == "__main__":
    main()
