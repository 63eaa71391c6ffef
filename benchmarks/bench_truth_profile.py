"""Where in the network each benchmark rewards capacity, and where each signal puts it.

S0 varies the depth of three ResNet stages (1, 3, 5 or 7 blocks); NAS-Bench-Macro chooses one of
three operations at each of eight layers. A least-squares fit of accuracy on one-hot choices (per
stage depth for S0, per layer operation for Macro) gives the points each choice adds; the same fit
of a signal (z-scored over the students) gives where the signal puts its weight. Read with the
cross-benchmark ranking: a signal can only rank a benchmark well if it rewards the same positions.

    python benchmarks/bench_truth_profile.py --cache benchmarks/.data/cross-cache-s0.jsonl \\
        benchmarks/.data/cross-cache.jsonl --json benchmarks/results/truth-profile.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from diswot.pipeline.benchmark_truth import macro_table, s0_table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cross_ranking import SIGNALS, read_cache as read_terms  # noqa: E402  (one table of signals, one cache reader)

#: the signals profiled (``bench_cross_ranking.SIGNALS`` gives each one's proxy, term and sign)
PROFILED = (
    "params",
    "flops",
    "depth",
    "synflow",
    "snip",
    "nwot",
    "nwot-last",
    "swap",
    "grad_norm",
    "fisher",
    "l2_norm",
    "zen",
    "zico",
    "meco",
    "semantic",
    "relation",
)
#: the teacher's terms, read again under ``bench@trained`` where the cache holds a trained teacher's
TEACHER_SIGNALS = ("semantic", "relation")


def one_hot(choices: np.ndarray, levels: Sequence[int]) -> np.ndarray:
    """An intercept column, then one column per (position, level) for every level but the first."""
    cols = [np.ones(len(choices))]
    for pos in range(choices.shape[1]):
        cols += [(choices[:, pos] == v).astype(float) for v in levels[1:]]
    return np.array(cols).T


def profile(y: np.ndarray, choices: np.ndarray, levels: Sequence[int]) -> dict[str, Any]:
    """Per position, what the largest level adds over the first (least squares), and the fit's R^2."""
    x = one_hot(choices, levels)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    per = len(levels) - 1
    gains = [float(beta[1 + per * p + per - 1]) for p in range(choices.shape[1])]
    r2 = 1.0 - float(np.var(y - x @ beta) / np.var(y))
    return {"gain": gains, "r2": r2}


def read_cache(paths: Sequence[Path], bench: str) -> dict[str, dict[str, float]]:
    """``{arch: {signal: value}}`` of ``bench`` at seed 0 (``bench@trained``: a trained teacher's terms)."""
    out: dict[str, dict[str, float]] = {}
    for path in paths:
        for (label, proxy, seed, arch), terms in read_terms(path).items():
            if label != bench or seed != 0 or not terms:
                continue
            for signal in PROFILED:
                want, term, sign = SIGNALS[signal]
                if proxy == want and term in terms:
                    out.setdefault(arch, {})[signal] = sign * float(terms[term])
    return out


def benches() -> dict[str, tuple[list[str], np.ndarray, dict[str, np.ndarray], list[int], list[str]]]:
    """Each benchmark's students, choices, truths, levels and position names."""
    s0: dict[str, dict[str, float]] = s0_table()["students"]  # type: ignore[assignment]
    s0_names = list(s0)
    s0_choices = np.array([[int(d) for d in n[len("ResNet[") : -1].split(",")] for n in s0_names])
    macro = macro_table("cifar10")
    m_names = list(macro)
    m_choices = np.array([[int(c) for c in n] for n in m_names])
    return {
        "s0": (
            s0_names,
            s0_choices,
            {
                "kd": np.array([s0[n]["kd_acc"] for n in s0_names]),
                "vanilla": np.array([s0[n]["vanilla_acc"] for n in s0_names]),
            },
            [1, 3, 5, 7],
            ["stage 1", "stage 2", "stage 3"],
        ),
        "macro": (
            m_names,
            m_choices,
            {"vanilla": np.array([float(macro[n]["mean_acc"]) for n in m_names])},
            [0, 1, 2],
            [f"layer {i + 1}" for i in range(8)],
        ),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", type=Path, nargs="*", default=[], help="cross-benchmark caches of raw terms")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    doc: dict[str, object] = {
        "command": " ".join(["python", "benchmarks/bench_truth_profile.py", *(argv or sys.argv[1:])])
    }
    for bench, (names, choices, truths, levels, positions) in benches().items():
        print(f"{bench}: points the largest choice adds over the smallest, per position ({', '.join(positions)})")
        rows: dict[str, dict[str, Any]] = {}
        for label, acc in truths.items():
            rows[f"truth:{label}"] = prof = profile(acc, choices, levels)
            print(
                f"  {'truth ' + label:16s} " + " ".join(f"{g:6.2f}" for g in prof["gain"]) + f"   R2 {prof['r2']:.2f}"
            )
        cached = read_cache(args.cache, bench)
        for signal in PROFILED:
            have = [i for i, n in enumerate(names) if signal in cached.get(n, {})]
            if len(have) < 3 * len(positions):
                continue
            y = np.array([cached[names[i]][signal] for i in have])
            y = (y - y.mean()) / y.std()
            rows[signal] = prof = profile(y, choices[have], levels)
            print(
                f"  {signal + ' (z)':16s} "
                + " ".join(f"{g:6.2f}" for g in prof["gain"])
                + f"   R2 {prof['r2']:.2f}, {len(have)} students"
            )
        entry: dict[str, Any] = {"positions": positions, "levels": levels, "profiles": rows}
        doc[bench] = entry
        if "kd" in truths:  # what distillation adds over vanilla training, against each position's depth
            gain = truths["kd"] - truths["vanilla"]
            taus = [float(stats.kendalltau(gain, choices[:, i]).statistic) for i in range(len(positions))]
            entry["kd_gain_kendall"] = taus
            print(
                "  KD gain (kd - vanilla), Kendall with each position's depth: " + " ".join(f"{t:+.2f}" for t in taus)
            )
            entry["kd_gain_signal_kendall"] = by_teacher = {}
            for teacher, label in (("random teacher", bench), ("trained teacher", f"{bench}@trained")):
                terms = read_cache(args.cache, label)
                wanted = PROFILED if teacher == "random teacher" else TEACHER_SIGNALS
                taus_s = {
                    s: float(stats.kendalltau(gain, [terms[n][s] for n in names]).statistic)
                    for s in wanted
                    if all(s in terms.get(n, {}) for n in names)
                }
                if taus_s:
                    by_teacher[teacher] = taus_s
                    print(
                        f"  KD gain, Kendall with each signal ({teacher}): "
                        + ", ".join(f"{s} {t:+.2f}" for s, t in taus_s.items())
                    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
