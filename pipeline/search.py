"""Search assembly: config -> space, teacher, probe batches, scorer, objective, sampler, study."""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Mapping

import optuna
from torch import nn

from diswot.spaces import ArchError, Limits, Space, get_space
from diswot.storage import deferred_params

from .config import DEFAULT_REFERENCE_SIZE, SAMPLERS, SearchConfig
from .data import dataset_info, network_batches, num_classes_of, probe_batches
from .errors import DiswotError, ProxyError
from diswot.proxies import Reference, arch_flops, check_supported, make_proxy, resolve_semantic_mode
from .scoring import Scorer, resolve_device
from .teachers import load_teacher

__all__ = [
    "ScoringSetup",
    "SearchObjective",
    "attach_reference",
    "check_limits_feasible",
    "make_sampler",
    "make_scoring",
    "suggest_student",
]

log = logging.getLogger(__name__)


@dataclass
class ScoringSetup:
    """A ready scorer and what it was resolved from."""

    config: SearchConfig
    space: Space
    scorer: Scorer
    num_classes: int
    image_size: int
    semantic: str
    limits: Limits
    #: the resolved teacher fields recorded on the study (fingerprint; input size if not the students')
    teacher_record: dict[str, Any] = field(default_factory=dict)
    #: the resolution the teacher runs at
    teacher_image_size: int | None = None
    #: the module given as the teacher (``run_search(teacher=...)``), for setups made from this one
    teacher_module: nn.Module | None = None

    def recorded(self) -> dict[str, Any]:
        """The configuration stored on the study."""
        return self.config.recorded(self.num_classes, self.semantic, self.teacher_record)


def check_limits_feasible(space: Space, limits: Limits, num_classes: int) -> None:
    """Refuse limits that no architecture of ``space`` can meet, naming the smallest one."""
    smallest = space.smallest(num_classes)
    reason = space.check(smallest, limits, num_classes)
    if reason is not None:
        n = space.count_params(smallest, num_classes)
        raise DiswotError(
            f"no {space.name} architecture fits the limits: the smallest, {space.encode(smallest)} "
            f"({n:,} parameters, {space.count_layers(smallest)} layers), fails because {reason}; "
            "raise --max-params/--max-layers"
        )


def make_scoring(config: SearchConfig, *, teacher: nn.Module | None = None) -> ScoringSetup:
    """Resolve a config into a :class:`ScoringSetup` (teacher side computed here, once).

    ``teacher`` is a module to use as the teacher, named ``config.teacher``; else ``config.teacher``
    is built (any ``--teacher`` form). The teacher sees the probe images at its own input size
    and normalisation, the students at theirs.
    """
    space = get_space(config.space)
    device = resolve_device(config.device)
    if config.precision != "fp32" and device.type != "cuda":
        # tf32 does nothing on a CPU, and bf16 autocast crashed a CPU convolution (SIGFPE in oneDNN)
        raise DiswotError(f"--precision {config.precision} is for CUDA GPUs; on {device.type} use --precision fp32")
    # synthetic and plain ImageFolder data, and spaces that need their own size (ViTs), take the
    # space's resolution unless --image-size says otherwise
    own = config.dataset in ("synthetic", "imagefolder") or space.own_image_size
    default_size = space.image_size if own else None
    info = dataset_info(config.dataset, image_size=config.image_size or default_size)
    num_classes = config.num_classes or num_classes_of(config.dataset, config.data_dir, space.default_num_classes)
    limits = config.limits()
    check_limits_feasible(space, limits, num_classes)
    built = load_teacher(
        config.teacher,
        num_classes,
        weights=config.teacher_weights,
        features=config.teacher_features,
        classifier=config.teacher_classifier,
        image_size=config.teacher_image_size,
        module=teacher,
        probe_size=info.image_size,
        seed=config.seed,
    )
    network = built.network
    teacher_size = built.image_size(info.image_size)
    semantic = resolve_semantic_mode(
        config.semantic, network.classifier.in_features, getattr(space, "fixed_feature_width", None)
    )
    # one resolved setup for the reference sample and every trial: each proxy takes what it declares
    proxy = make_proxy(config.proxy, {"semantic": semantic})
    check_supported(proxy, space, num_classes, info.image_size)  # a proxy that refuses the space says so here, once
    batches = probe_batches(
        dataset=config.dataset,
        data_dir=config.data_dir,
        batch_size=config.batch_size,
        seed=config.seed,
        repeats=config.repeats,
        num_classes=num_classes,
        info=info,
    )
    teacher_batches = network_batches(
        batches,
        dataset=config.dataset,
        data_dir=config.data_dir,
        seed=config.seed,
        info=info,
        image_size=teacher_size,
        mean=built.input.mean,
        std=built.input.std,
    )
    scorer = Scorer(
        space=space,
        proxy=proxy,
        batches=batches,
        teacher_batches=teacher_batches,
        teacher=network,
        device=device,
        init=config.init,
        seed=config.seed,
        num_classes=num_classes,
        init_teacher=config.teacher_weights is None,
        precision=config.precision,
    )
    record: dict[str, Any] = {"teacher_fingerprint": built.fingerprint}
    if teacher_size != info.image_size:
        record["teacher_image_size"] = teacher_size
    return ScoringSetup(
        config, space, scorer, num_classes, info.image_size, semantic, limits, record, teacher_size, teacher
    )


def attach_reference(
    setup: ScoringSetup, study: optuna.Study | None = None, on_arch: Callable[[], None] | None = None
) -> None:
    """Give a rank-aggregated proxy its reference sample: the study's stored one, or a new one.

    The sample is ``config.reference_size`` architectures within the limits, drawn with the
    study's seed and scored with the study's scorer (:mod:`.reference`). Without a ``study`` it is
    built and not stored (``diswot rank``).
    """
    if not setup.scorer.proxy.reference_terms:
        return
    from .reference import build_reference, reference_archs, study_reference

    def make() -> Reference:
        size = setup.config.reference_size or DEFAULT_REFERENCE_SIZE
        archs = reference_archs(setup.space, setup.limits, setup.num_classes, size=size, seed=setup.config.seed)
        log.info("scoring a reference sample of %d architectures for %s", len(archs), setup.config.proxy)
        return build_reference(setup.scorer, archs, on_arch=on_arch)

    setup.scorer.reference = make() if study is None else study_reference(study, make)


class SearchObjective:
    """The Optuna objective: suggest a student, check the limits, score it, record side figures.

    User attributes: ``arch``, ``params``, ``flops``, ``layers``, each score term
    (``score``, ``semantic``, ``relation``, ...) and ``score_seconds``. An invalid or over-limit
    student, or a non-finite score, fails the trial with the reason (``fail_reason``). A student
    the study has scored already gets the stored score and attributes back without a forward pass,
    plus ``reused_from`` (the trial that scored it): S0 has only 64 students. ``reuse=False`` scores
    every trial's student again (the score is deterministic: for timing the scorer). A student of the
    reference sample takes its raw terms from there (the search's first candidates are drawn as the
    sample was, so a short search scores little more than its own students): ``score_seconds`` 0.
    """

    def __init__(self, setup: ScoringSetup, *, reuse: bool = True) -> None:
        self.setup = setup
        self.reuse = reuse
        #: arch string -> (trial number, value, user attributes) of a COMPLETE trial that scored it:
        #: the study's when this worker starts, then this worker's own
        self.known: dict[str, tuple[int, float, dict[str, Any]]] | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        s = self.setup
        arch = suggest_student(s.space, trial)
        encoded = s.space.encode(arch)
        trial.set_user_attr("arch", encoded)
        reason = s.space.check(arch, s.limits, s.num_classes)
        if reason is not None:
            trial.set_user_attr(FAIL_REASON, reason)
            raise ArchError(f"{encoded}: {reason}")
        if self.known is None:
            self.known = _scored_students(trial.study) if self.reuse else {}
        if encoded in self.known:  # the score is deterministic: reuse it, no forward pass
            number, value, attrs = self.known[encoded]
            for key, attr in attrs.items():
                if key != "arch" and not key.startswith("distill_"):
                    trial.set_user_attr(key, attr)
            trial.set_user_attr(REUSED_FROM, number)
            return value
        attrs = {"params": int(s.space.count_params(arch, s.num_classes)), "layers": int(s.space.count_layers(arch))}
        for key, attr in attrs.items():
            trial.set_user_attr(key, attr)
        try:
            result = (s.scorer.from_reference(arch) if self.reuse else None) or s.scorer.score(arch)
        except ProxyError as exc:
            trial.set_user_attr(FAIL_REASON, str(exc))
            raise
        attrs["flops"] = result.flops or arch_flops(s.space, arch, s.num_classes, s.image_size)
        attrs.update(result.terms)
        attrs["score_seconds"] = result.seconds
        for key in ("flops", *result.terms, "score_seconds"):
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
        str(t.user_attrs["arch"]): (t.number, float(t.values[0]), dict(t.user_attrs))  # the score: first value
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if "arch" in t.user_attrs and t.values and REUSED_FROM not in t.user_attrs
    }


#: user attribute of a failed trial: why it failed
FAIL_REASON = "fail_reason"
#: user attribute of a trial whose student the study had scored already: that trial's number
REUSED_FROM = "reused_from"


def name_objective(study: optuna.Study, proxy: str) -> None:
    """Name the objective after the proxy (Optuna's metric names): optuna-dashboard's plots and best-trial card show it."""
    if study.metric_names == [proxy]:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([proxy])


def failure_summary(trials: list[optuna.trial.FrozenTrial], *, sampler: str) -> str | None:
    """One line when most of ``trials`` failed: how many, an example reason and what to change."""
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL and FAIL_REASON in t.user_attrs]
    if not trials or 2 * len(failed) <= len(trials):
        return None
    reasons = Counter(re.sub(r"[0-9][0-9,.]*", "N", str(t.user_attrs[FAIL_REASON])) for t in failed)
    common = reasons.most_common(1)[0][0]
    example = next(t for t in failed if re.sub(r"[0-9][0-9,.]*", "N", str(t.user_attrs[FAIL_REASON])) == common)
    hint = "see the trials' fail_reason"
    if "exceed the limit" in common:
        hint = (
            f"--sampler {sampler} does not keep to the limits: use --sampler evolution, or raise --max-params/--max-layers"
            if sampler != "evolution"
            else "raise --max-params/--max-layers"
        )
    return (
        f"{len(failed)} of {len(trials)} trials failed, e.g. trial {example.number} "
        f"({example.user_attrs.get('arch', '?')}): {example.user_attrs[FAIL_REASON]}; {hint}"
    )


#: exceptions that fail one trial (recorded with the reason) without stopping the study
TRIAL_ERRORS: tuple[type[Exception], ...] = (ArchError, ProxyError)


def make_sampler(
    name: str,
    *,
    space: Space,
    limits: Limits,
    num_classes: int,
    seed: int | None,
    population_size: int = 20,
    tournament_size: int = 10,
    constraint: Callable[[dict[str, Any]], str | None] | None = None,
    objectives: int = 1,
) -> optuna.samplers.BaseSampler:
    """``evolution`` (DisWOT's mutation under the limits), ``random`` or ``tpe``, seeded.

    ``constraint`` replaces the evolution's check of ``limits`` (e.g. to add a FLOPs limit). With
    several ``objectives`` the evolution counts equivalent students (:func:`student_key`) as
    duplicates; a single-objective search compares params, as it always has.
    """
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name != "evolution":
        raise DiswotError(f"unknown --sampler {name!r}; valid: {', '.join(SAMPLERS)}")
    from diswot.samplers import EvolutionSampler

    sampler: optuna.samplers.BaseSampler = EvolutionSampler(
        suggest_func=space.suggest,
        constraint=constraint or limit_constraint(space, limits, num_classes),
        population_size=population_size,
        tournament_size=tournament_size,
        seed=seed,
        key=student_key(space) if objectives > 1 else None,
    )
    return sampler


def student_key(space: Space) -> Callable[[Mapping[str, Any]], Hashable]:
    """``key(params)``: the encoded representative of the student the params build
    (:meth:`Space.representative`), so that equivalent students share it; params that build no
    student are their own key."""

    def key(params: Mapping[str, Any]) -> Hashable:
        try:
            text: str = space.encode(space.representative(space.from_params(params)))
        except ArchError:
            return frozenset(params.items())
        return text

    return key


def limit_constraint(space: Space, limits: Limits, num_classes: int) -> Callable[[dict[str, Any]], str | None]:
    """The sampler's constraint: None when the params' arch is valid and within the limits."""

    def constraint(params: dict[str, Any]) -> str | None:
        try:
            arch: Hashable = space.from_params(params)
        except ArchError as exc:
            return str(exc)
        reason: str | None = space.check(arch, limits, num_classes)
        return reason

    return constraint


__all__ += ["FAIL_REASON", "REUSED_FROM", "TRIAL_ERRORS", "failure_summary", "limit_constraint", "name_objective"]
