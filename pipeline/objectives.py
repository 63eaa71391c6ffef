"""Multi-objective searches: the DisWOT score against parameters, FLOPs or latency.

``--objectives score,params`` makes the study return ``(score, params)``: the score is maximised,
the cost figures are minimised, and the study's Pareto front holds the best student of every
budget. ``--max-flops`` is a hard limit beside ``--max-params`` / ``--max-layers``: the
evolutionary sampler never proposes a student over it and any other sampler's over-limit
student fails before it is scored.
"""

from __future__ import annotations

import statistics
import time
import warnings
from typing import Any, Callable, Hashable, Sequence

import optuna
import torch
from optuna.study import StudyDirection

from diswot.proxies import arch_flops
from diswot.spaces import ArchError

from .errors import DiswotError
from .search import ScoringSetup, SearchObjective, limit_constraint, suggest_student

__all__ = [
    "DIRECTIONS",
    "best_score",
    "check_directions",
    "flops_constraint",
    "make_objective",
    "measure_latency",
    "name_metrics",
    "parse_objectives",
    "search_constraint",
    "study_directions",
]

#: every objective a search can have and its direction; the score always comes first
DIRECTIONS: dict[str, StudyDirection] = {
    "score": StudyDirection.MAXIMIZE,
    "params": StudyDirection.MINIMIZE,
    "flops": StudyDirection.MINIMIZE,
    "latency": StudyDirection.MINIMIZE,
}
#: the trial user attribute that holds each objective's value
ATTRS = {"score": "score", "params": "params", "flops": "flops", "latency": "latency_ms"}


def parse_objectives(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"score,params"`` -> ``("score", "params")``; the score must come first, no repeats."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text)]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in DIRECTIONS]
    if unknown:
        raise DiswotError(f"--objectives: unknown {', '.join(map(repr, unknown))}; valid: {', '.join(DIRECTIONS)}")
    if not names or names[0] != "score" or len(set(names)) != len(names):
        raise DiswotError(
            f"--objectives {','.join(names) or repr(text)}: give score first and each objective once, "
            "e.g. score,params or score,flops,latency"
        )
    return tuple(names)


def study_directions(objectives: Sequence[str]) -> list[StudyDirection]:
    """The study directions of ``objectives`` (score maximised, costs minimised)."""
    return [DIRECTIONS[name] for name in objectives]


def check_directions(study: optuna.Study, objectives: Sequence[str]) -> None:
    """Refuse a study whose directions do not match ``objectives`` (e.g. created by another tool)."""
    want = study_directions(objectives)
    if list(study.directions) != want:
        have = ", ".join(d.name.lower() for d in study.directions)
        raise DiswotError(
            f"study {study.study_name!r} has directions ({have}) but --objectives {','.join(objectives)} needs "
            f"({', '.join(d.name.lower() for d in want)}); use the study's objectives or another --study"
        )


def name_metrics(study: optuna.Study, objectives: Sequence[str]) -> None:
    """Name a multi-objective study's values (optuna-dashboard labels its Pareto-front plot with them)."""
    if len(objectives) > 1 and study.metric_names != list(objectives):
        with warnings.catch_warnings():  # experimental since Optuna 3.2, stable in use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(objectives))


def best_score(study: optuna.Study) -> float:
    """The highest score of the study's COMPLETE trials (its first objective)."""
    if len(study.directions) == 1:
        best: float = study.best_value
        return best
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return max(float(t.values[0]) for t in trials)


def measure_latency(net: torch.nn.Module, images: torch.Tensor, *, warmup: int = 2, runs: int = 7) -> float:
    """Median milliseconds of one inference forward pass of ``images`` on their device, after warm-up."""
    cuda = images.device.type == "cuda"
    was_training = net.training
    net.eval()
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            if cuda:
                torch.cuda.synchronize(images.device)
            start = time.perf_counter()
            net(images)
            if cuda:
                torch.cuda.synchronize(images.device)
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000.0)
    net.train(was_training)
    return statistics.median(times)


def flops_constraint(
    base: Callable[[dict[str, Any]], str | None], setup: ScoringSetup, max_flops: int
) -> Callable[[dict[str, Any]], str | None]:
    """``base`` (the params/layers limits), then the FLOPs limit (the sampler memoises verdicts)."""

    def constraint(params: dict[str, Any]) -> str | None:
        reason = base(params)
        if reason is not None:
            return reason
        return _flops_reason(setup, setup.space.from_params(params), max_flops)

    return constraint


def _flops_reason(setup: ScoringSetup, arch: Hashable, max_flops: int) -> str | None:
    flops = arch_flops(setup.space, arch, setup.num_classes, setup.image_size)
    return f"{flops:,} FLOPs per image exceed the limit of {max_flops:,}" if flops > max_flops else None


def search_constraint(setup: ScoringSetup, max_flops: int | None) -> Callable[[dict[str, Any]], str | None]:
    """The evolutionary sampler's check: the space's limits, and ``max_flops`` when given."""
    base = limit_constraint(setup.space, setup.limits, setup.num_classes)
    return base if max_flops is None else flops_constraint(base, setup, max_flops)


class MultiObjective:
    """A :class:`SearchObjective` under ``--max-flops`` and/or with several objectives.

    The FLOPs limit is checked before the student is scored (an over-limit trial fails with the
    reason); the values are the trial's figures in the order of ``objectives``. With ``latency``
    the student is timed on the scoring device (:func:`measure_latency`, user attribute
    ``latency_ms``).
    """

    def __init__(self, inner: SearchObjective, objectives: Sequence[str], max_flops: int | None) -> None:
        self.inner = inner
        self.objectives = tuple(objectives)
        self.max_flops = max_flops

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        s = self.inner.setup
        if self.max_flops is not None:
            arch = suggest_student(s.space, trial)  # the objective suggests it again: same values
            reason = s.space.check(arch, s.limits, s.num_classes) or _flops_reason(s, arch, self.max_flops)
            if reason is not None:
                trial.set_user_attr("arch", s.space.encode(arch))
                raise ArchError(f"{s.space.encode(arch)}: {reason}")
        score = self.inner(trial)
        if len(self.objectives) == 1:
            return score
        if "latency" in self.objectives:
            arch = s.space.from_params(trial.params)
            net = s.scorer.build(arch)
            trial.set_user_attr(ATTRS["latency"], measure_latency(net, s.scorer.batches[0].images))
        attrs = trial.user_attrs
        return tuple(score if name == "score" else float(attrs[ATTRS[name]]) for name in self.objectives)


def make_objective(
    setup: ScoringSetup,
    objectives: Sequence[str] = ("score",),
    max_flops: int | None = None,
    *,
    reuse: bool = True,
) -> Callable[[optuna.Trial], float | tuple[float, ...]]:
    """The study's objective: the plain :class:`SearchObjective` for a single-objective search
    without a FLOPs limit (as before), else a :class:`MultiObjective`; ``reuse=False`` scores every
    trial's student, even one the study has scored."""
    inner = SearchObjective(setup, reuse=reuse)
    if tuple(objectives) == ("score",) and max_flops is None:
        return inner
    return MultiObjective(inner, objectives, max_flops)
