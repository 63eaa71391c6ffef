"""Scoring one student and ranking students against a ground truth, outside a study.

``score(config, "ResNet[7,1,3]")`` gives every term of one architecture (``diswot score``);
``rank("macro:cifar10", config=...)`` how well each proxy ranks a ground truth (``diswot rank``,
DisWOT supplementary A.2). A rank-aggregated score ranks against a reference sample: both keep
the samples they score in a cache (:func:`~.reference.cache_dir`), so the second call for the
same space, teacher, probe batch and proxy reads it instead of scoring it again.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

import numpy as np

from .assembly import ScoringSetup, make_scoring
from .config import SearchConfig
from .errors import DiswotError
from .progress import StepProgress
from .reference import ReferenceCache, cache_dir
from .ranking import GroundTruth, ProxyRanking

__all__ = ["RankReport", "StudentScore", "proxy_names", "rank", "score"]

log = logging.getLogger(__name__)

#: ``(config, reused)`` before a reference sample: ``reused`` when it is read, not scored
OnReference = Callable[[SearchConfig, bool], None]


@dataclass(frozen=True)
class StudentScore:
    """One architecture's score, its terms, size and cost (``diswot score``)."""

    space: str
    arch: str
    teacher: str
    proxy: str
    score: float
    terms: dict[str, float]
    params: int
    layers: int
    flops: int
    within_limits: bool
    seconds: float
    #: the weights the score takes from the study's reference sample, by term (the default's size
    #: counts, weighed by the teacher); empty for a score without them
    weights: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON document of ``diswot score --json``."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _cache(cache: bool | str | Path) -> ReferenceCache | None:
    if cache is False:
        return None
    return ReferenceCache(cache_dir() if cache is True else Path(cache))


def _steps(progress: StepProgress | None, label: str, total: int) -> contextlib.AbstractContextManager[Any]:
    return contextlib.nullcontext(lambda: None) if progress is None else progress(label, total)


def ready_reference(
    setup: ScoringSetup, *, progress: StepProgress | None = None, on_reference: OnReference | None = None
) -> None:
    """Score (or read) the setup's reference sample now, under ``progress``; nothing for a score that needs none."""
    source = setup.reference_source
    if source is None or not setup.scorer.proxy.reference_terms:
        return
    reused = source.cached()
    if on_reference is not None:
        on_reference(setup.config, reused)
    with _steps(None if reused else progress, f"{setup.config.proxy}: reference sample", source.size) as advance:
        setup.scorer.reference_sample(advance)


def score(
    config: SearchConfig,
    arch: str | Hashable,
    *,
    cache: bool | str | Path = True,
    progress: StepProgress | None = None,
    on_reference: OnReference | None = None,
) -> StudentScore:
    """Score one architecture of ``config.space`` (its arch string, or an arch) against ``config.teacher``.

    A rank-aggregated score (such as the default, :data:`~.config.DEFAULT_PROXY`) ranks against a
    reference sample, read from ``cache`` (``True``: :func:`~.reference.cache_dir`; a folder;
    ``False``: none) or scored there first under ``progress``.
    """
    from diswot.proxies import arch_flops
    from diswot.spaces import get_space

    space = get_space(config.space)
    student = space.decode(arch) if isinstance(arch, str) else arch  # a malformed string fails first
    setup = make_scoring(config, cache=_cache(cache))
    ready_reference(setup, progress=progress, on_reference=on_reference)
    result = setup.scorer.score(student)
    flops = result.flops
    return StudentScore(
        space=space.name,
        arch=space.encode(student),
        teacher=config.teacher,
        proxy=config.proxy,
        score=result.score,
        terms={k: v for k, v in result.terms.items() if k != "score"},
        params=space.count_params(student, setup.num_classes),
        layers=space.count_layers(student),
        flops=flops if flops is not None else arch_flops(space, student, setup.num_classes, setup.image_size),
        within_limits=space.check(student, setup.limits, setup.num_classes) is None,
        seconds=result.seconds,
        weights={} if setup.scorer.reference is None else setup.scorer.proxy.reference_weights(setup.scorer.reference),
    )


def proxy_names(names: Sequence[str] | str | None) -> list[str]:
    """The proxies to rank: every registered one for ``None``, else the names given (checked, no repeats)."""
    from diswot.proxies import PROXIES

    known: list[str] = PROXIES.names()
    if names is None:
        return known
    wanted = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    if not wanted:
        raise DiswotError(f"`proxies` is empty; known proxies: {', '.join(known)}")
    unknown = [n for n in wanted if n not in PROXIES]
    if unknown:
        raise DiswotError(f"unknown proxy {', '.join(map(repr, unknown))}; known proxies: {', '.join(known)}")
    dupes = sorted({n for n in wanted if wanted.count(n) > 1})
    if dupes:
        raise DiswotError(f"`proxies` names {', '.join(dupes)} more than once")
    return wanted


def supported_proxies(names: list[str], space: Any, *, skip: bool) -> tuple[list[str], list[str]]:
    """``(kept, refusals)``: ``names`` without the proxies that refuse ``space`` when ``skip`` (each
    refusal's reason listed); otherwise the first refusal is the error. Checked before any scoring."""
    from diswot.proxies import ProxyError, check_supported, get_proxy

    keep, refused = [], []
    for name in names:
        try:
            check_supported(get_proxy(name), space, space.default_num_classes, space.image_size)
        except ProxyError as exc:
            if not skip:
                raise
            refused.append(str(exc))
            continue
        keep.append(name)
    return keep, refused


def ground_truth(spec: str | Path, space: Any, sample: int | None, seed: int) -> GroundTruth:
    """The CSV file or packaged benchmark ``spec`` (``nb201:cifar100``, ``macro:cifar10``), or a seeded sample of it."""
    from .benchmark_truth import benchmark_truth, is_benchmark_spec, sample_indices
    from .ranking import load_ground_truth

    if isinstance(spec, str) and is_benchmark_spec(spec):
        return benchmark_truth(spec, space, sample=sample, seed=seed)
    truth = load_ground_truth(Path(spec), space)
    if sample is None:
        return truth
    keep = sample_indices(len(truth), sample, seed)
    return GroundTruth(
        truth.space,
        tuple(truth.archs[i] for i in keep),
        tuple(truth.names[i] for i in keep),
        truth.accuracy[keep],
        tuple(truth.lines[i] for i in keep),
    )


@dataclass
class RankReport:
    """What ``diswot rank`` reports: each proxy's ranking of the ground truth."""

    truth: GroundTruth
    results: list[ProxyRanking]
    top_k: int
    #: the proxies left out because they refuse the space (one reason each)
    skipped: list[str] = field(default_factory=list)
    #: budget regret of each proxy (``None`` where fewer than 3 students scored)
    regrets: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    #: each proxy's paired-bootstrap figures (:func:`~diswot.pipeline.ranking.bootstrap_kendall`); empty without ``bootstrap``
    bootstrap: dict[str, dict[str, Any]] = field(default_factory=dict)

    def kendall(self) -> dict[str, float | None]:
        """Each proxy's Kendall tau (mean over the repeats)."""
        return {r.proxy: r.metrics.get("kendall") for r in self.results}


def _regret(res: ProxyRanking, truth: GroundTruth, params: np.ndarray) -> dict[str, Any] | None:
    """Budget regret of ``res``'s scores (archs that failed left out); stored in its metrics too."""
    from .ranking import budget_regret

    keep = [i for i, name in enumerate(truth.names) if res.scores[name] is not None]
    if len(keep) < 3:
        res.metrics.update(regret_mean=None, regret_max=None)
        return None
    scores = np.array([res.scores[truth.names[i]] for i in keep], dtype=float)
    regret = budget_regret(scores, truth.accuracy[keep], params[keep])
    res.metrics.update(regret_mean=regret["mean"], regret_max=regret["max"])
    return regret


def rank(
    truth: str | Path,
    *,
    config: SearchConfig,
    proxies: Sequence[str] | str | None = None,
    sample: int | None = None,
    top_k: int | None = None,
    cache: bool | str | Path = True,
    progress: StepProgress | None = None,
    bootstrap: int = 0,
) -> RankReport:
    """How well each proxy ranks ``truth`` (a CSV ``arch,accuracy``, ``nb201:DATASET`` or ``macro:cifar10``).

    Every student (or a seeded ``sample`` of them, ``config.seed``) is scored with each proxy under
    ``config`` (its ``proxy`` field is not used); the metrics are DisWOT's A.2 (Kendall, Spearman,
    Pearson, precision@k) and the budget regret. Without ``proxies`` every registered proxy that
    accepts the space is ranked (the others are listed in :attr:`RankReport.skipped`). With
    ``bootstrap`` resamples of the students (seed ``config.seed``), each proxy's mean score over the
    repeats also gets its tau's 5-95% interval and how often it ranks above the others
    (:attr:`RankReport.bootstrap`).
    """
    if bootstrap < 0:
        raise DiswotError(f"`bootstrap` must be 0 (none) or a number of resamples, got {bootstrap}")
    from diswot.spaces import get_space

    from .ranking import default_top_k, rank_proxy

    space = get_space(config.space)
    names, skipped = supported_proxies(proxy_names(proxies), space, skip=proxies is None)
    students = ground_truth(truth, space, sample, config.seed)
    if top_k is not None and top_k < 1:
        raise DiswotError(f"`top_k` must be >= 1, got {top_k}")
    k = min(top_k or default_top_k(len(students)), len(students))
    results: list[ProxyRanking] = []
    num_classes = space.default_num_classes
    for i, name in enumerate(names, 1):
        setup = make_scoring(replace(config, proxy=name), cache=_cache(cache))
        num_classes = setup.num_classes
        ready_reference(setup, progress=progress)
        with _steps(progress, f"scoring {name} ({i}/{len(names)})", len(students)) as advance:
            results.append(rank_proxy(name, students, _per_repeat(setup), top_k=k, on_arch=advance))
    params = np.array([space.count_params(a, num_classes) for a in students.archs], dtype=float)
    regrets = {r.proxy: _regret(r, students, params) for r in results}
    intervals = _bootstrap(results, students, bootstrap, config.seed) if bootstrap else {}
    return RankReport(students, results, k, skipped, regrets, intervals)


def _bootstrap(results: list[ProxyRanking], truth: GroundTruth, resamples: int, seed: int) -> dict[str, dict[str, Any]]:
    """Paired bootstrap of the proxies' mean scores (a failed student is nan: left out of that proxy's tau)."""
    from .ranking import bootstrap_kendall

    scores = {
        r.proxy: np.array([np.nan if (v := r.scores[n]) is None else v for n in truth.names], dtype=float)
        for r in results
    }
    return bootstrap_kendall(scores, truth.accuracy, resamples=resamples, seed=seed)


def _per_repeat(setup: ScoringSetup) -> Callable[[Hashable], Sequence[float]]:
    """``arch -> its score under each repeat`` with ``setup``'s scorer."""

    def per_repeat(arch: Hashable) -> Sequence[float]:
        return setup.scorer.score(arch).per_repeat

    return per_repeat
