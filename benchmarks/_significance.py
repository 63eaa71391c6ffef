"""How much of a score's margin over size the benchmarks can tell apart from noise.

Two figures beside the cross-benchmark ranking (``bench_cross_ranking.py --bootstrap N``):

* **a paired bootstrap over the students**: the same resample of a benchmark's students for the
  score and for ``params`` and ``flops``; the 5-95% interval of its margins (Kendall tau minus the
  better count's, the lower count regret minus its own) and how often it beats both counts;
* **one training run as the score** (the ceiling of any proxy of trained accuracy): on NAS-Bench-201
  and NAS-Bench-Macro, each seed's accuracy ranks the mean of the other seeds (the seeds every
  sampled student has: two on NAS-Bench-201, three on Macro), and the counts are judged against
  that same mean; on S0, whose table holds one run a student, the vanilla
  accuracy ranks the distilled accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Hashable

import numpy as np
from scipy import stats

from diswot.pipeline.benchmark_truth import macro_table, nb201_key, nb201_table, s0_table
from diswot.pipeline.ranking import budget_regret

__all__ = ["bootstrap_margins", "one_run_ceiling"]

SIZES = ("params", "flops")


def _figures(score: np.ndarray, acc: np.ndarray, params: np.ndarray) -> tuple[float, float]:
    s = np.where(np.isfinite(score), score, -np.inf)
    tau = float(stats.kendalltau(stats.rankdata(s), acc).statistic)
    return tau, budget_regret(s, acc, params)["mean"]


def bootstrap_margins(
    scores: Mapping[str, np.ndarray],
    acc: np.ndarray,
    params: np.ndarray,
    *,
    names: Sequence[str],
    resamples: int,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Paired bootstrap of each of ``names``' margins over ``scores["params"]`` and ``scores["flops"]``.

    Returns ``{name: {tau_lo, tau_hi, regret_lo, regret_hi, p_tau, p_regret, p_both}}``: the 5% and
    95% quantiles of the tau margin (score minus the better count) and of the regret margin (the
    lower count regret minus the score's), and the share of resamples where the score beats both
    counts in tau, in regret, and in both.
    """
    rng = np.random.default_rng(seed)
    n = len(acc)
    margins: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        a, p = acc[idx], params[idx]
        base = [_figures(scores[s][idx], a, p) for s in SIZES]
        best_tau, best_regret = max(t for t, _ in base), min(r for _, r in base)
        for name in names:
            tau, regret = _figures(scores[name][idx], a, p)
            margins[name].append((tau - best_tau, best_regret - regret))
    out: dict[str, dict[str, float]] = {}
    for name, rows in margins.items():
        m = np.array(rows)
        out[name] = {
            "tau_lo": float(np.quantile(m[:, 0], 0.05)),
            "tau_hi": float(np.quantile(m[:, 0], 0.95)),
            "regret_lo": float(np.quantile(m[:, 1], 0.05)),
            "regret_hi": float(np.quantile(m[:, 1], 0.95)),
            "p_tau": float(np.mean(m[:, 0] > 0)),
            "p_regret": float(np.mean(m[:, 1] > 0)),
            "p_both": float(np.mean((m[:, 0] > 0) & (m[:, 1] > 0))),
        }
    return out


def _runs(bench: str, names: Sequence[str], archs: Sequence[Hashable]) -> np.ndarray:
    """``(students, runs)`` accuracies: the seeds every student has (NAS-Bench-201, Macro), or S0's vanilla and KD runs."""
    if bench == "nb201":
        table = nb201_table("cifar100")
        runs = [table[nb201_key(a)]["val_acc"] for a in archs]
        shared = min(len(r) for r in runs)  # about half of the cells hold two seeds, the rest three
        return np.array([r[:shared] for r in runs], dtype=float)
    if bench == "macro":
        macro = macro_table("cifar10")
        return np.array([macro[n]["test_acc"] for n in names], dtype=float)
    students: dict[str, dict[str, float]] = s0_table()["students"]  # type: ignore[assignment]
    return np.array([[students[n]["vanilla_acc"], students[n]["kd_acc"]] for n in names], dtype=float)


def one_run_ceiling(
    bench: str, names: Sequence[str], archs: Sequence[Hashable], sizes: Mapping[str, np.ndarray], params: np.ndarray
) -> dict[str, Any]:
    """One training run as the score, beside ``params`` and ``flops``, against the same truth.

    NAS-Bench-201 and Macro: for each seed k, run k scores and the mean of the other seeds is the
    truth; the figures are the means over k. S0: vanilla accuracy scores, distilled accuracy is the truth.
    """
    runs = _runs(bench, names, archs)
    pairs = (
        [(runs[:, 0], runs[:, 1])]
        if bench == "s0"
        else [(runs[:, k], np.delete(runs, k, axis=1).mean(axis=1)) for k in range(runs.shape[1])]
    )
    rows: dict[str, list[tuple[float, float]]] = {"one run": [], **{s: [] for s in sizes}}
    for score, truth in pairs:
        rows["one run"].append(_figures(score, truth, params))
        for s, col in sizes.items():
            rows[s].append(_figures(col, truth, params))
    return {
        "runs": "vanilla accuracy ranks KD accuracy"
        if bench == "s0"
        else f"seed k ranks the mean of the other {runs.shape[1] - 1}",
        **{
            k: {"kendall": float(np.mean([t for t, _ in v])), "regret_mean": float(np.mean([r for _, r in v]))}
            for k, v in rows.items()
        },
    }
