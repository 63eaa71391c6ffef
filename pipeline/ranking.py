"""How well a training-free score ranks architectures against a user's ground truth.

The ground truth is a CSV with the columns ``arch,accuracy`` (``arch`` in the space's canonical
string). The metrics are the DisWOT supplementary's A.2 definitions computed with scipy:
Kendall's tau (:func:`scipy.stats.kendalltau`; tau-b, which is A.2's tau when there are no
ties), Spearman's rho and Pearson's r; plus precision at top-k (the share of the true top-k among
the predicted top-k) and the best true rank (1 = the most accurate architecture) among the
predicted top-k. With several repeats (seeds and probe batches) each metric is reported as mean
and standard deviation (population, ``ddof=0``) over the repeats.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from diswot.spaces import ArchError, Space

from .errors import DiswotError, ProxyError

__all__ = [
    "METRICS",
    "GroundTruth",
    "ProxyRanking",
    "correlations",
    "default_top_k",
    "load_ground_truth",
    "rank_metrics",
    "rank_proxy",
    "summarise_repeats",
    "top_k_metrics",
    "budget_regret",
    "bootstrap_kendall",
    "top_mean",
]

log = logging.getLogger(__name__)

#: the metrics of one repeat, in report order
METRICS: tuple[str, ...] = ("kendall", "spearman", "pearson", "precision_at_k", "best_rank_in_top_k")


@dataclass(frozen=True)
class GroundTruth:
    """Parsed ground truth: archs, their canonical strings, accuracies and CSV line numbers."""

    space: str
    archs: tuple[Hashable, ...]
    names: tuple[str, ...]
    accuracy: np.ndarray
    lines: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.archs)


def load_ground_truth(path: str | Path, space: Space) -> GroundTruth:
    """Read and check a ground-truth CSV (``arch,accuracy``; extra columns are ignored).

    An arch string with commas may be quoted (``"ResNet[7,1,3]",71.2``) or not
    (``ResNet[7,1,3],71.2``): cells beyond the header's count are joined into the arch.

    Raises:
        DiswotError: one line naming the file and CSV line for a missing file or column, an arch
            that does not parse, a duplicate arch, an accuracy that is not a finite number, or
            fewer than 3 rows.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DiswotError(f"ground-truth file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DiswotError(f"cannot read ground-truth file {str(path)!r}: {exc}") from None
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise DiswotError(f"{path}: the file is empty; expected a header line 'arch,accuracy'")
    columns = [h.strip().lower() for h in header]
    missing = [c for c in ("arch", "accuracy") if c not in columns]
    if missing:
        raise DiswotError(
            f"{path}:1: the header {','.join(header)!r} lacks the column(s) {', '.join(missing)}; "
            "expected 'arch,accuracy'"
        )
    rows: dict[Hashable, tuple[float, int]] = {}  # arch -> accuracy and CSV line, in file order
    for row in reader:
        if row and any(cell.strip() for cell in row):
            arch, value = _truth_row(path, reader.line_num, row, header, columns, space)
            if arch in rows:
                raise DiswotError(
                    f"{path}:{reader.line_num}: arch {space.encode(arch)} is a duplicate of line {rows[arch][1]}; "
                    "give each arch once"
                )
            rows[arch] = (value, reader.line_num)
    if len(rows) < 3:
        raise DiswotError(f"{path}: {len(rows)} architecture row(s); a ranking needs at least 3")
    archs = tuple(rows)
    accuracies = np.asarray([value for value, _ in rows.values()], dtype=float)
    lines = tuple(line for _, line in rows.values())
    return GroundTruth(space.name, archs, tuple(space.encode(a) for a in archs), accuracies, lines)


def _truth_row(
    path: Path, line: int, row: list[str], header: list[str], columns: list[str], space: Space
) -> tuple[Hashable, float]:
    """The arch and accuracy of one CSV row, or a one-line error naming the file and line."""
    i_arch, i_acc = columns.index("arch"), columns.index("accuracy")
    extra = len(row) - len(header)
    if extra > 0:  # an unquoted arch with commas, e.g. ResNet[7,1,3]: read it whole
        row = row[:i_arch] + [",".join(row[i_arch : i_arch + extra + 1])] + row[i_arch + extra + 1 :]
    if len(row) <= max(i_arch, i_acc):
        raise DiswotError(f"{path}:{line}: expected the columns {','.join(header)}, got {','.join(row)!r}")
    text_arch, text_acc = row[i_arch].strip(), row[i_acc].strip()
    try:
        arch = space.decode(text_arch)
    except ArchError as exc:
        raise DiswotError(f"{path}:{line}: arch {text_arch!r} is not a {space.name} architecture: {exc}") from None
    try:
        value = float(text_acc)
    except ValueError:
        raise DiswotError(f"{path}:{line}: accuracy {text_acc!r} is not a number") from None
    if not math.isfinite(value):
        raise DiswotError(f"{path}:{line}: accuracy {text_acc!r} is not a finite number")
    return arch, value


def default_top_k(n: int) -> int:
    """The default k of precision@k: the top 10% (at least 1)."""
    return max(1, math.ceil(n / 10))


def _constant(x: np.ndarray) -> bool:
    return bool(np.all(x == x[0]))


def correlations(scores: ArrayLike, accuracy: ArrayLike) -> dict[str, float | None]:
    """Kendall tau, Spearman rho and Pearson r (scipy); ``None`` when either side is constant."""
    s = np.asarray(scores, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    if len(s) != len(a):
        raise ValueError(f"{len(s)} scores for {len(a)} accuracies")
    if len(s) < 3 or _constant(s) or _constant(a):
        return {"kendall": None, "spearman": None, "pearson": None}
    return {
        "kendall": float(stats.kendalltau(s, a).statistic),
        "spearman": float(stats.spearmanr(s, a).statistic),
        "pearson": float(stats.pearsonr(s, a).statistic),
    }


def top_k_metrics(scores: ArrayLike, accuracy: ArrayLike, k: int) -> dict[str, float | None]:
    """Precision at top-k and the best true rank among the predicted top-k.

    Ties are broken by input order (stable sorts), so the result is deterministic. A true rank is
    1 + the number of strictly more accurate architectures.
    """
    s = np.asarray(scores, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    n = len(s)
    if n == 0:
        return {"precision_at_k": None, "best_rank_in_top_k": None}
    k = max(1, min(int(k), n))
    predicted = np.argsort(-s, kind="stable")[:k]
    true_top = np.argsort(-a, kind="stable")[:k]
    true_rank = 1 + (a[None, :] > a[:, None]).sum(axis=1)
    return {
        "precision_at_k": len(set(predicted.tolist()) & set(true_top.tolist())) / k,
        "best_rank_in_top_k": float(true_rank[predicted].min()),
    }


def top_mean(scores: ArrayLike, accuracy: ArrayLike, n: int = 10) -> float:
    """Mean accuracy of the ``n`` highest-scored architectures (ties broken by input order)."""
    s = np.asarray(scores, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    return float(a[np.argsort(-s, kind="stable")[: max(1, min(n, len(s)))]].mean())


def budget_regret(scores: ArrayLike, accuracy: ArrayLike, params: ArrayLike, *, budgets: int = 10) -> dict[str, Any]:
    """What a user with a parameter budget loses by taking the score's pick instead of the best.

    ``budgets`` limits are spread over the sample's parameter range (its quantiles 1/budgets ..
    1); under each, the regret is the best accuracy within the budget minus the accuracy of the
    highest-scored architecture within it. Returns ``mean``, ``max`` and per-budget
    ``{"budgets", "regret"}`` lists.
    """
    s = np.asarray(scores, dtype=float)
    a = np.asarray(accuracy, dtype=float)
    p = np.asarray(params, dtype=float)
    limits = np.quantile(p, np.linspace(1.0 / budgets, 1.0, budgets), method="inverted_cdf")
    regret = []
    for limit in limits:
        inside = np.flatnonzero(p <= limit)
        pick = inside[np.argmax(s[inside])]
        regret.append(float(a[inside].max() - a[pick]))
    return {"mean": float(np.mean(regret)), "max": float(np.max(regret)), "budgets": limits.tolist(), "regret": regret}


#: the size counts a score has to beat: ``beats_size`` is the share of resamples above each of them
SIZE_COUNTS = ("params", "flops")


def _tau(s: np.ndarray, a: np.ndarray) -> float:
    keep = np.isfinite(s)
    s, a = s[keep], a[keep]
    if len(s) < 3 or _constant(s) or _constant(a):
        return math.nan
    return float(stats.kendalltau(s, a).statistic)


def bootstrap_kendall(
    scores: Mapping[str, ArrayLike], accuracy: ArrayLike, *, resamples: int, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """How far each score's Kendall tau can be told from the others', by a paired bootstrap.

    The students are resampled with replacement ``resamples`` times, the same resample for every
    score (nan marks a student the score failed on: left out of its tau). Per score: the 5% and 95%
    quantiles of its tau (``kendall_lo``, ``kendall_hi``), ``above``: for every other score, the
    share of resamples in which its tau is higher, and ``beats_size``: the share in which it is
    higher than that of every size count present (``params``, ``flops``; ``None`` without them).
    """
    if resamples < 1:
        raise DiswotError(f"`resamples` must be at least 1, got {resamples}")
    a = np.asarray(accuracy, dtype=float)
    cols = {name: np.asarray(v, dtype=float) for name, v in scores.items()}
    rng = np.random.default_rng(seed)
    taus = {name: np.empty(resamples) for name in cols}
    for r in range(resamples):
        idx = rng.integers(0, len(a), len(a))
        for name, s in cols.items():
            taus[name][r] = _tau(s[idx], a[idx])
    sizes = [c for c in SIZE_COUNTS if c in cols]
    out: dict[str, dict[str, Any]] = {}
    for name, t in taus.items():
        ok = t[np.isfinite(t)]
        above = {other: float(np.mean(t > taus[other])) for other in taus if other != name}
        others = [c for c in sizes if c != name]
        beats = np.all([t > taus[c] for c in others], axis=0) if others else None
        out[name] = {
            "kendall_lo": float(np.quantile(ok, 0.05)) if len(ok) else None,
            "kendall_hi": float(np.quantile(ok, 0.95)) if len(ok) else None,
            "above": above,
            "beats_size": None if beats is None else float(np.mean(beats)),
        }
    return out


def rank_metrics(scores: ArrayLike, accuracy: ArrayLike, k: int) -> dict[str, float | None]:
    """Every metric of :data:`METRICS` for one repeat."""
    return {**correlations(scores, accuracy), **top_k_metrics(scores, accuracy, k)}


def summarise_repeats(per_repeat: Sequence[Mapping[str, float | None]]) -> dict[str, float | None]:
    """``{metric: mean, metric_std: std}`` over the repeats (undefined repeats left out)."""
    out: dict[str, float | None] = {}
    for m in METRICS:
        values = [v for r in per_repeat if (v := r.get(m)) is not None]
        out[m] = float(np.mean(values)) if values else None
        out[f"{m}_std"] = float(np.std(values)) if values else None
    return out


@dataclass
class ProxyRanking:
    """One proxy's result: summary metrics, per-repeat metrics, scores, failures, time."""

    proxy: str
    metrics: dict[str, float | None]
    per_repeat: list[dict[str, float | None]]
    scores: dict[str, float | None]
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self, top_k: int, repeats: int) -> dict[str, Any]:
        """The JSON object of ``--json`` (no timings, so equal runs give equal files)."""
        return {
            **self.metrics,
            "top_k": top_k,
            "repeats": repeats,
            "failed": len(self.failed),
            "failures": dict(sorted(self.failed.items())),
            "scores": self.scores,
        }


def rank_proxy(
    name: str,
    truth: GroundTruth,
    score_fn: Callable[[Hashable], Sequence[float]],
    *,
    top_k: int,
    on_arch: Callable[[], None] | None = None,
) -> ProxyRanking:
    """Score every ground-truth arch with ``score_fn`` (one value per repeat) and rank them.

    An arch whose scoring raises :class:`ProxyError` is left out of this proxy's metrics and
    listed in ``failed`` with the reason; the metrics are undefined (``None``) when fewer than
    3 archs remain.
    """
    start = time.perf_counter()
    per_arch: list[Sequence[float] | None] = []
    failed: dict[str, str] = {}
    for arch, label in zip(truth.archs, truth.names):
        try:
            per_arch.append(list(score_fn(arch)))
        except ProxyError as exc:
            log.warning("%s: %s failed: %s", name, label, exc)
            failed[label] = str(exc)
            per_arch.append(None)
        if on_arch is not None:
            on_arch()
    seconds = time.perf_counter() - start
    scored = [(i, v) for i, v in enumerate(per_arch) if v is not None]
    repeats = max((len(v) for _, v in scored), default=0)
    acc = truth.accuracy[[i for i, _ in scored]]
    per_repeat: list[dict[str, float | None]] = []
    for r in range(repeats):
        s = np.array([v[r] for _, v in scored], dtype=np.float64)
        per_repeat.append(rank_metrics(s, acc, top_k) if len(scored) >= 3 else dict.fromkeys(METRICS))
    scores = {label: (None if v is None else float(np.mean(v))) for label, v in zip(truth.names, per_arch)}
    return ProxyRanking(name, summarise_repeats(per_repeat), per_repeat, scores, failed, seconds)
