"""Search assembly: a config -> space, teacher, probe batches, scorer (a :class:`ScoringSetup`), the
sampler and its constraint, and the reference sample of a rank-aggregated score."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Hashable, Mapping

import optuna
import torch
from torch import nn

from diswot.proxies import (
    Proxy,
    Reference,
    TeacherContext,
    arch_flops,
    check_supported,
    make_proxy,
    resolve_semantic_mode,
)
from diswot.spaces import ArchError, Limits, Space, get_space
from diswot.storage import record

from .config import DEFAULT_REFERENCE_SIZE, SAMPLERS, SearchConfig
from .data import DatasetInfo, dataset_info, network_batches, num_classes_of, probe_batches
from .errors import DiswotError
from .reference import ReferenceCache, Retest, build_reference, reference_archs, study_reference
from .scoring import Scorer, resolve_device
from .teachers import Teacher, load_teacher

__all__ = [
    "ReferenceSample",
    "ScoringSetup",
    "attach_reference",
    "check_limits_feasible",
    "draw_reference",
    "flops_reason",
    "limit_constraint",
    "make_sampler",
    "make_scoring",
    "random_phase_sampler",
    "search_constraint",
    "student_key",
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
    #: where the scorer's reference sample comes from when it was not given (:class:`ReferenceSample`)
    reference_source: ReferenceSample | None = None
    #: the memoised limit checks, by FLOPs limit (:meth:`constraint`)
    _constraints: dict[int | None, Callable[[Mapping[str, Any]], str | None]] = field(
        default_factory=dict, init=False, repr=False
    )

    def recorded(self) -> dict[str, Any]:
        """The configuration stored on the study."""
        return self.config.recorded(self.num_classes, self.semantic, self.teacher_record)

    def constraint(self, max_flops: int | None = None) -> Callable[[Mapping[str, Any]], str | None]:
        """``check(params)``: None when the params' student is valid and within the limits (and
        ``max_flops``), else the reason. Memoised per student: the sampler's check before it
        proposes a candidate and the objective's check of the trial are one computation."""
        if max_flops not in self._constraints:
            if max_flops is None:
                check = limit_constraint(self.space, self.limits, self.num_classes)
            else:  # on the memoised limits' check
                check = flops_constraint(self.constraint(None), self, max_flops)
            self._constraints[max_flops] = _memoised(check)
        return self._constraints[max_flops]


def check_limits_feasible(space: Space, limits: Limits, num_classes: int) -> None:
    """Refuse limits that no architecture of ``space`` can meet, naming the smallest one."""
    smallest = space.smallest(num_classes)
    reason = space.check(smallest, limits, num_classes)
    if reason is not None:
        n = space.count_params(smallest, num_classes)
        raise DiswotError(
            f"no {space.name} architecture fits the limits: the smallest, {space.encode(smallest)} "
            f"({n:,} parameters, {space.count_layers(smallest)} layers), fails because {reason}; "
            "raise `max_params`/`max_layers`"
        )


def make_scoring(
    config: SearchConfig,
    *,
    teacher: nn.Module | None = None,
    reference: Reference | None = None,
    cache: ReferenceCache | None = None,
    contexts: Mapping[int, TeacherContext] | None = None,
) -> ScoringSetup:
    """Resolve a config into a :class:`ScoringSetup` (teacher side computed here, once).

    ``teacher`` is a module to use as the teacher, named ``config.teacher``; else ``config.teacher``
    is built (any ``--teacher`` form). The teacher sees the probe images at its own input size
    and normalisation, the students at theirs. A rank-aggregated score ranks against ``reference``
    when given, else against a :class:`ReferenceSample` scored when first needed (read from and
    kept in ``cache`` when given; a search binds it to its study first). ``contexts`` are teacher
    sides a scorer of the same study prepared (:meth:`Scorer.prepared`): they are not prepared again.
    """
    space = get_space(config.space)
    device = resolve_device(config.device)
    if config.precision != "fp32" and device.type != "cuda":
        # tf32 does nothing on a CPU, and bf16 autocast crashed a CPU convolution (SIGFPE in oneDNN)
        raise DiswotError(f"`precision` {config.precision} is for CUDA GPUs; on {device.type} use `precision` fp32")
    # synthetic and plain ImageFolder data, and spaces that need their own size (ViTs), take the
    # space's resolution unless --image-size says otherwise
    own = config.dataset in ("synthetic", "imagefolder") or space.own_image_size
    info = dataset_info(config.dataset, image_size=config.image_size or (space.image_size if own else None))
    num_classes = config.num_classes or num_classes_of(config.dataset, config.data_dir, space.default_num_classes)
    limits = config.limits()
    check_limits_feasible(space, limits, num_classes)
    built = _teacher(config, num_classes, info.image_size, teacher)
    semantic = resolve_semantic_mode(
        config.semantic, built.network.classifier.in_features, getattr(space, "fixed_feature_width", None)
    )
    # one resolved setup for the reference sample and every trial: each proxy takes what it declares
    proxy = make_proxy(config.proxy, {"semantic": semantic})
    check_supported(proxy, space, num_classes, info.image_size)  # a proxy that refuses the space says so here, once
    teacher_size = built.image_size(info.image_size)
    source = None
    if reference is None:
        teacher_key = {"fingerprint": built.fingerprint, "image_size": teacher_size, "semantic": semantic}
        probe_key = {"image_size": info.image_size, "device": device.type}
        source = ReferenceSample(config, space, limits, num_classes, cache=cache, teacher=teacher_key, probe=probe_key)
    scorer = _scorer(
        config, space, proxy, built, info, num_classes, device, reference if reference is not None else source, contexts
    )
    if source is not None and proxy.retest_terms:  # the reference sample's second draw: one more repeat
        more = replace(config, repeats=config.repeats + 1)
        source.retest = lambda: _scorer(more, space, proxy, built, info, num_classes, device, None, scorer.prepared())
    teacher_record: dict[str, Any] = {"teacher_fingerprint": built.fingerprint}
    if teacher_size != info.image_size:
        teacher_record["teacher_image_size"] = teacher_size
    return ScoringSetup(
        config,
        space,
        scorer,
        num_classes,
        info.image_size,
        semantic,
        limits,
        teacher_record,
        teacher_size,
        teacher,
        source,
    )


def _teacher(config: SearchConfig, num_classes: int, probe_size: int, module: nn.Module | None) -> Teacher:
    """The study's teacher (``module``, named ``config.teacher``, when given) for the probe images' size."""
    return load_teacher(
        config.teacher,
        num_classes,
        weights=config.teacher_weights,
        features=config.teacher_features,
        classifier=config.teacher_classifier,
        image_size=config.teacher_image_size,
        module=module,
        probe_size=probe_size,
        seed=config.seed,
    )


def _scorer(
    config: SearchConfig,
    space: Space,
    proxy: Proxy,
    built: Teacher,
    info: DatasetInfo,
    num_classes: int,
    device: torch.device,
    reference: Reference | ReferenceSample | None,
    contexts: Mapping[int, TeacherContext] | None = None,
) -> Scorer:
    """The probe batches (the students' and the teacher's) and the scorer over them, ranking
    against ``reference`` (a sample, or its source)."""
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
        image_size=built.image_size(info.image_size),
        mean=built.input.mean,
        std=built.input.std,
    )
    return Scorer(
        reference=reference,
        space=space,
        proxy=proxy,
        batches=batches,
        teacher_batches=teacher_batches,
        teacher=built.network,
        device=device,
        init=config.init,
        init_draw=config.drawn,
        seed=config.seed,
        num_classes=num_classes,
        init_teacher=config.teacher_weights is None,
        precision=config.precision,
        contexts=contexts,
    )


def _file_stamp(weights: str | None) -> list[Any] | str | None:
    """The teacher's checkpoint file (a run folder's ``checkpoint.pt``), its size and modification time:
    a retrained teacher is another file."""
    from .checkpoint import weights_path

    if weights is None:
        return None
    try:
        file = weights_path(weights)
        stat = file.stat()
    except (DiswotError, OSError):
        return weights
    return [str(file.resolve()), stat.st_size, stat.st_mtime_ns]


@dataclass
class ReferenceSample:
    """The reference sample of a rank-aggregated score, as its scorer's source (:data:`~.scoring.ReferenceSource`).

    ``config.reference_size`` architectures within the limits, drawn by the evolutionary sampler's
    random phase with the study's seed (so the search's first candidates are its students) and
    scored with the scorer that asks for it (:mod:`.reference`). Bound to a study it is the study's
    stored sample (scored and stored by the first worker); else it is read from ``cache`` when the
    same scoring made it before, or scored (and kept there).
    """

    config: SearchConfig
    space: Space
    limits: Limits
    num_classes: int
    study: optuna.Study | None = None
    cache: ReferenceCache | None = None
    #: the resolved teacher and probe figures that decide the sample's terms (part of :meth:`key`)
    teacher: dict[str, Any] = field(default_factory=dict)
    probe: dict[str, Any] = field(default_factory=dict)
    #: the study's scoring with one more repeat, for a proxy with retest terms (its second draw)
    retest: Callable[[], Scorer] | None = None

    @property
    def size(self) -> int:
        return self.config.reference_size or DEFAULT_REFERENCE_SIZE

    def key(self) -> dict[str, Any]:
        """What decides the sample's raw terms: the cache's key."""
        config = asdict(self.config)
        fields = ("space", "teacher", "teacher_features", "teacher_classifier", "proxy", "dataset", "seed")
        return {
            **{name: config[name] for name in (*fields, "batch_size", "repeats", "init", "precision")},
            "init_draw": self.config.drawn,
            "data_dir": os.path.abspath(config["data_dir"]) if config["data_dir"] else None,
            "teacher_weights": _file_stamp(config["teacher_weights"]),
            "num_classes": self.num_classes,
            "limits": [self.limits.max_params, self.limits.max_layers],
            "size": self.size,
            **{f"teacher_{k}": v for k, v in self.teacher.items()},
            **self.probe,
        }

    def cached(self) -> bool:
        """Whether the sample will be read rather than scored (stored in the study, or in the cache)."""
        if self.study is not None:
            return record.reference_sample(self.study) is not None
        return self.cache is not None and self.cache.load(self.key()) is not None

    def __call__(self, scorer: Scorer, on_arch: Callable[[], None] | None = None) -> Reference:
        study = self.study

        def make() -> Reference:
            archs = draw_reference(self.space, self.limits, self.num_classes, size=self.size, seed=self.config.seed)
            log.info("scoring a reference sample of %d architectures for %s", len(archs), self.config.proxy)
            retest = None if self.retest is None else Retest(self.retest, self.config.repeats)
            if study is None:
                return build_reference(scorer, archs, on_arch=on_arch, retest=retest)
            known = record.reference_parts(study)  # an interrupted sample resumes where it stopped

            def keep(index: int, arch: str, terms: dict[str, float] | None) -> None:
                record.add_reference_part(study, index, arch, terms)

            return build_reference(scorer, archs, on_arch=on_arch, known=known, on_scored=keep, retest=retest)

        if study is not None:
            return study_reference(study, make)
        if self.cache is None:
            return make()
        key = self.key()
        found = self.cache.load(key)
        if found is not None:
            log.info("reference sample read from the cache %s", self.cache.path(key))
            return found
        reference = make()
        self.cache.store(key, reference)
        return reference


def attach_reference(
    setup: ScoringSetup, study: optuna.Study | None = None, on_arch: Callable[[], None] | None = None
) -> None:
    """Score (or read) the setup's reference sample now: the study's stored one when ``study`` is
    given (a new one is stored there), else one scored for this setup; ``on_arch`` after each
    architecture scored. Nothing for a score that needs no sample."""
    if setup.reference_source is not None and study is not None:
        setup.reference_source.study = study
    setup.scorer.reference_sample(on_arch)


def draw_reference(space: Space, limits: Limits, num_classes: int, *, size: int, seed: int) -> list[Hashable]:
    """The architectures of a reference sample: ``size`` distinct students within ``limits``, drawn by
    :func:`random_phase_sampler` with ``seed`` (:func:`~.reference.reference_archs`)."""
    sampler = random_phase_sampler(space, limits, num_classes, seed=seed)
    return reference_archs(space, limits, num_classes, size=size, sampler=sampler)


def random_phase_sampler(space: Space, limits: Limits, num_classes: int, *, seed: int) -> optuna.samplers.BaseSampler:
    """The evolutionary sampler held in its random phase: random students within the limits, drawn
    exactly as a search with ``seed`` draws its first candidates."""
    return make_sampler(
        "evolution",
        space=space,
        limits=limits,
        num_classes=num_classes,
        seed=seed,
        population_size=10**9,
        tournament_size=1,
    )


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
    duplicates; a single-objective search compares params.
    """
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name != "evolution":
        raise DiswotError(f"unknown `sampler` {name!r}; valid: {', '.join(SAMPLERS)}")
    from diswot.samplers import EvolutionSampler

    sampler: optuna.samplers.BaseSampler = EvolutionSampler(
        suggest_func=space.suggest,
        constraint=constraint or limit_constraint(space, limits, num_classes),
        population_size=population_size,
        tournament_size=tournament_size,
        seed=seed,
        key=student_key(space) if objectives > 1 else None,
        lineage_key=record.LINEAGE,
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


def _memoised(check: Callable[[Mapping[str, Any]], str | None]) -> Callable[[Mapping[str, Any]], str | None]:
    """``check`` computed once per distinct params."""
    verdicts: dict[tuple[tuple[str, Any], ...], str | None] = {}

    def memo(params: Mapping[str, Any]) -> str | None:
        key = tuple(sorted(params.items()))
        if key not in verdicts:
            verdicts[key] = check(params)
        return verdicts[key]

    return memo


def limit_constraint(space: Space, limits: Limits, num_classes: int) -> Callable[[Mapping[str, Any]], str | None]:
    """The sampler's constraint: None when the params' arch is valid and within the limits."""

    def constraint(params: Mapping[str, Any]) -> str | None:
        try:
            arch: Hashable = space.from_params(params)
        except ArchError as exc:
            return str(exc)
        reason: str | None = space.check(arch, limits, num_classes)
        return reason

    return constraint


def flops_constraint(
    base: Callable[[Mapping[str, Any]], str | None], setup: ScoringSetup, max_flops: int
) -> Callable[[Mapping[str, Any]], str | None]:
    """``base`` (the params/layers limits), then the FLOPs limit."""

    def constraint(params: Mapping[str, Any]) -> str | None:
        reason = base(params)
        if reason is not None:
            return reason
        return flops_reason(setup, setup.space.from_params(params), max_flops)

    return constraint


def flops_reason(setup: ScoringSetup, arch: Hashable, max_flops: int) -> str | None:
    """Why ``arch`` breaks the FLOPs limit, or None."""
    flops = arch_flops(setup.space, arch, setup.num_classes, setup.image_size)
    return f"{flops:,} FLOPs per image exceed the limit of {max_flops:,}" if flops > max_flops else None


def search_constraint(setup: ScoringSetup, max_flops: int | None) -> Callable[[Mapping[str, Any]], str | None]:
    """The evolutionary sampler's check: the space's limits, and ``max_flops`` when given (the
    setup's memoised :meth:`~ScoringSetup.constraint`, which the objective asks too)."""
    return setup.constraint(max_flops)
