"""The study's objective: score a student (:class:`SearchObjective`), or, in a multi-objective search,
the score against parameters, FLOPs or latency.

Multi-objective searches: the DisWOT score against parameters, FLOPs or latency.

``--objectives score,params`` makes the study return ``(score, params)``: the score is maximised,
the cost figures are minimised, and the study's Pareto front holds the best student of every
budget. ``--max-flops`` is a hard limit beside ``--max-params`` / ``--max-layers``: the
evolutionary sampler never proposes a student over it and any other sampler's over-limit
student fails before it is scored.
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections import Counter
from typing import Any, Callable, Sequence

import optuna
import torch

from diswot.proxies import ProxyError, arch_flops
from diswot.spaces import ArchError, Space
from diswot.storage import deferred_params, record

from .assembly import ScoringSetup

__all__ = [
    "TRIAL_ERRORS",
    "MultiObjective",
    "SearchObjective",
    "failure_summary",
    "make_objective",
    "measure_latency",
    "suggest_student",
]


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


class MultiObjective:
    """A :class:`SearchObjective` with several objectives.

    The values are the trial's figures in the order of ``objectives``. With ``latency`` the
    student is timed on the scoring device (:func:`measure_latency`, user attribute
    ``latency_ms``).
    """

    def __init__(self, inner: SearchObjective, objectives: Sequence[str]) -> None:
        self.inner = inner
        self.objectives = tuple(objectives)

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        s = self.inner.setup
        score = self.inner(trial)
        if len(self.objectives) == 1:
            return score
        if "latency" in self.objectives:
            arch = s.space.from_params(trial.params)
            net = s.scorer.build(arch)
            trial.set_user_attr(record.LATENCY, measure_latency(net, s.scorer.batches[0].images))
        attrs = trial.user_attrs
        return tuple(
            score if name == "score" else float(attrs[record.objective_attr(name)]) for name in self.objectives
        )


def make_objective(
    setup: ScoringSetup,
    objectives: Sequence[str] = ("score",),
    max_flops: int | None = None,
    *,
    reuse: bool = True,
) -> Callable[[optuna.Trial], float | tuple[float, ...]]:
    """The study's objective: the plain :class:`SearchObjective` (under ``max_flops``) for a
    single-objective search, else a :class:`MultiObjective`; ``reuse=False`` scores every
    trial's student, even one the study has scored."""
    inner = SearchObjective(setup, max_flops=max_flops, reuse=reuse)
    if tuple(objectives) == ("score",):
        return inner
    return MultiObjective(inner, objectives)


class SearchObjective:
    """The Optuna objective: suggest a student, check the limits (and ``max_flops``), score it,
    record side figures.

    User attributes: ``arch``, ``params``, ``flops``, ``layers``, each score term
    (``score``, ``semantic``, ``relation``, ...) and ``score_seconds``. An invalid or over-limit
    student, or a non-finite score, fails the trial with the reason (``fail_reason``). A student
    the study has scored already gets the stored score and attributes back without a forward pass,
    plus ``reused_from`` (the trial that scored it): S0 has only 64 students. ``reuse=False`` scores
    every trial's student again (the score is deterministic: for timing the scorer). A student of the
    reference sample takes its raw terms from there (the search's first candidates are drawn as the
    sample was, so a short search scores little more than its own students): ``score_seconds`` 0.
    """

    def __init__(self, setup: ScoringSetup, *, max_flops: int | None = None, reuse: bool = True) -> None:
        self.setup = setup
        self.reuse = reuse
        #: the limits' check (with ``max_flops``), shared with (and memoised for) the evolutionary sampler's
        self.check = setup.constraint(max_flops)
        self.limits = setup.constraint(None)
        #: arch string -> (trial number, value, user attributes) of a COMPLETE trial that scored it:
        #: the study's when this worker starts, then this worker's own
        self.known: dict[str, tuple[int, float, dict[str, Any]]] | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        s = self.setup
        arch = suggest_student(s.space, trial)
        encoded = s.space.encode(arch)
        trial.set_user_attr(record.ARCH, encoded)
        reason = self.check(trial.params)  # the sampler's verdict on this student, where it gave one
        if reason is not None:
            if self.limits(trial.params) is not None:  # the FLOPs limit's failures record none, as ever
                trial.set_user_attr(record.FAIL_REASON, reason)
            raise ArchError(f"{encoded}: {reason}")
        if self.known is None:
            self.known = _scored_students(trial.study) if self.reuse else {}
        if encoded in self.known:  # the score is deterministic: reuse it, no forward pass
            number, value, attrs = self.known[encoded]
            for key, attr in attrs.items():
                if key != record.ARCH and not key.startswith(record.DISTILL_PREFIX):
                    trial.set_user_attr(key, attr)
            trial.set_user_attr(record.REUSED_FROM, number)
            return value
        attrs = {
            record.PARAMS: int(s.space.count_params(arch, s.num_classes)),
            record.LAYERS: int(s.space.count_layers(arch)),
        }
        for key, attr in attrs.items():
            trial.set_user_attr(key, attr)
        try:
            result = (s.scorer.from_reference(arch) if self.reuse else None) or s.scorer.score(arch)
        except ProxyError as exc:
            trial.set_user_attr(record.FAIL_REASON, str(exc))
            raise
        attrs[record.FLOPS] = result.flops or arch_flops(s.space, arch, s.num_classes, s.image_size)
        attrs.update(result.terms)
        attrs[record.SCORE_SECONDS] = result.seconds
        for key in (record.FLOPS, *result.terms, record.SCORE_SECONDS):
            trial.set_user_attr(key, attrs[key])
        if self.reuse and math.isfinite(result.score):
            self.known[encoded] = (trial.number, float(result.score), attrs)
        return result.score


def suggest_student(space: Space, trial: optuna.Trial) -> Any:
    """The trial's student (``space.suggest``); its params reach the storage in one write."""
    with deferred_params(trial):
        return space.suggest(trial)


def _scored_students(study: optuna.Study) -> dict[str, tuple[int, float, dict[str, Any]]]:
    """Arch string -> (trial number, score, user attributes) of the study's COMPLETE trials that scored it."""
    return {
        str(t.user_attrs[record.ARCH]): (t.number, float(t.values[0]), dict(t.user_attrs))  # the score: first value
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if record.ARCH in t.user_attrs and t.values and record.REUSED_FROM not in t.user_attrs
    }


def failure_summary(trials: list[optuna.trial.FrozenTrial], *, sampler: str) -> str | None:
    """One line when most of ``trials`` failed: how many, an example reason and what to change."""
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL and record.FAIL_REASON in t.user_attrs]
    if not trials or 2 * len(failed) <= len(trials):
        return None
    reasons = Counter(re.sub(r"[0-9][0-9,.]*", "N", str(t.user_attrs[record.FAIL_REASON])) for t in failed)
    common = reasons.most_common(1)[0][0]
    example = next(t for t in failed if re.sub(r"[0-9][0-9,.]*", "N", str(t.user_attrs[record.FAIL_REASON])) == common)
    hint = "see the trials' fail_reason"
    if "exceed the limit" in common:
        hint = (
            f"`sampler` {sampler} does not keep to the limits: use `sampler` evolution, or raise `max_params`/`max_layers`"
            if sampler != "evolution"
            else "raise `max_params`/`max_layers`"
        )
    return (
        f"{len(failed)} of {len(trials)} trials failed, e.g. trial {example.number} "
        f"({example.user_attrs.get('arch', '?')}): {example.user_attrs[record.FAIL_REASON]}; {hint}"
    )


#: exceptions that fail one trial (recorded with the reason) without stopping the study
TRIAL_ERRORS: tuple[type[Exception], ...] = (ArchError, ProxyError)
