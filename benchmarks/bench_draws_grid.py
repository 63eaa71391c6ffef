"""Every weighting of the default's signals with k draws averaged, judged by its worst benchmark.

Reads the draws that ``bench_draws.py --save-draws`` wrote for each benchmark and scores the
students as the pick does with ``--pick-repeats k`` (the mean raw terms of k draws, ranked
against the reference sample of one draw), for every weighting ``w_s z(M_s) + w_r z(M_r) + w_y
z(SynFlow) + w_p z(log params) + w_f z(log FLOPs)`` on a grid. A weighting's margin on a benchmark
is its Kendall tau minus the better of ``params`` and ``flops`` there; the worst margin decides.

    python benchmarks/bench_draws_grid.py benchmarks/.data/draws/s0.json benchmarks/.data/draws/nb201.json \\
        benchmarks/.data/draws/macro.json --k 4 --json benchmarks/results/draws-grid.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau

from diswot.proxies import Reference

#: the default's signals and the direction of each (M_s and M_r are distances: lower is better)
SIGNALS = {"semantic": -1.0, "relation": -1.0, "synflow": 1.0, "log_params": 1.0, "log_flops": 1.0}
DEFAULT = {"semantic": 0.5, "relation": 0.0, "synflow": 0.5, "log_params": 0.5, "log_flops": 0.5}


def normal_scores(saved: dict[str, Any], k: int) -> dict[str, np.ndarray]:  # type: ignore[type-arg]
    """Each signal's normal score of every student as the pick ranks it: the mean raw term of its
    first ``k`` draws against the reference sample's first draw."""
    first = [draws[0] for draws in saved["reference"]]
    ref = Reference(tuple(str(i) for i in range(len(first))), {t: [f[t] for f in first] for t in SIGNALS})
    return {
        t: np.array(
            [ref.normal_score(t, float(np.mean([d[t] for d in draws[:k]])), sign=sign) for draws in saved["students"]]
        )
        for t, sign in SIGNALS.items()
    }


def margins(weights: dict[str, float], benches: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Each benchmark's Kendall tau of the weighting minus the better count's."""
    out = {}
    for name, b in benches.items():
        score = sum(w * b["z"][t] for t, w in weights.items())
        out[name] = float(kendalltau(score, b["accuracy"])[0]) - b["count"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("draws", type=Path, nargs="+", help="files written by bench_draws.py --save-draws")
    p.add_argument("--k", type=int, default=4, help="draws averaged (the pick's --pick-repeats)")
    p.add_argument("--grid", default="0,0.5,1,2", help="each weight's values")
    p.add_argument("--top", type=int, default=8)
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    benches: dict[str, dict[str, Any]] = {}
    for path in a.draws:
        saved = json.loads(path.read_text())
        acc = np.asarray(saved["accuracy"])
        count = max(float(kendalltau(saved[c], acc)[0]) for c in ("params", "flops"))
        benches[saved["truth"]] = {"z": normal_scores(saved, a.k), "accuracy": acc, "count": count}
    grid = [float(x) for x in a.grid.split(",")]
    rows = []
    for values in itertools.product(grid, repeat=len(SIGNALS)):
        if any(values):
            weights = dict(zip(SIGNALS, values))
            m = margins(weights, benches)
            rows.append({"weights": weights, "margins": m, "worst": min(m.values())})
    rows.sort(key=lambda r: -r["worst"])
    default = margins(DEFAULT, benches)
    names = " ".join(f"{n:>16}" for n in benches)
    print(f"{len(rows)} weightings of {', '.join(SIGNALS)}; {a.k} draws as the pick averages them")
    print(f"{'weights':<28} {'worst':>6} {names}")
    for r in rows[: a.top]:
        w = ",".join(f"{v:g}" for v in r["weights"].values())
        print(f"{w:<28} {r['worst']:+.3f} " + " ".join(f"{v:>+16.3f}" for v in r["margins"].values()))
    w = ",".join(f"{v:g}" for v in DEFAULT.values())
    print(f"{w + ' (default)':<28} {min(default.values()):+.3f} " + " ".join(f"{v:>+16.3f}" for v in default.values()))
    if a.json:
        command = " ".join(["python", "benchmarks/bench_draws_grid.py", *(argv if argv is not None else sys.argv[1:])])
        out = {"command": command, "k": a.k, "default": default, "best": rows[: a.top], "weightings": len(rows)}
        a.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
