"""What ranking a candidate against the study's reference sample costs, score by score.

A reference-ranked score computes its raw terms (the forward pass, timed by ``bench_families.py
cost``) and then combines them against the stored reference sample. This times that second step:
microseconds per candidate for each score, on a reference of ``--size`` architectures with seeded
random terms, after one warm call (``diswot-teacher-capacity`` and ``diswot-teacher-balance`` compute their weights, two Kendall
taus over the reference, once per reference and reuses them).

    python benchmarks/bench_combine.py --json benchmarks/results/combine-cost.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from diswot.proxies import Reference, get_proxy

SCORES = (
    "diswot-semantic-capacity",
    "diswot-teacher-capacity",
    "diswot-teacher-balance",
    "diswot-capacity",
    "diswot-flow",
)
TERMS = ("relation", "semantic", "synflow", "log_params", "log_flops")


def time_combine(name: str, reference: Reference, candidates: list[dict[str, float]]) -> dict[str, float]:
    """Seconds of the first call and microseconds per call after it."""
    proxy = get_proxy(name)
    t0 = time.perf_counter()
    proxy.combine(candidates[0], reference)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for terms in candidates:
        proxy.combine(terms, reference)
    per = (time.perf_counter() - t0) / len(candidates)
    return {"first_call_ms": first * 1e3, "per_candidate_us": per * 1e6}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=64, help="architectures in the reference sample")
    p.add_argument("--candidates", type=int, default=2000)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    reference = Reference(tuple(map(str, range(args.size))), {k: rng.normal(size=args.size).tolist() for k in TERMS})
    candidates = [{k: float(v) for k, v in zip(TERMS, rng.normal(size=len(TERMS)))} for _ in range(args.candidates)]
    rows = {name: time_combine(name, reference, candidates) for name in SCORES}
    base = rows[SCORES[0]]["per_candidate_us"]
    for name, row in rows.items():
        print(
            f"{name:28s} first call {row['first_call_ms']:7.2f} ms, then {row['per_candidate_us']:7.1f} us a candidate "
            f"({row['per_candidate_us'] / base:.2f}x {SCORES[0]})"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"command": " ".join(sys.argv), "size": args.size, "rows": rows}, indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
