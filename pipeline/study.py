"""The study of a search: open or create it, record its configuration (or check a resumed study's
against it), give a rank-aggregated score its reference sample, and fail the trials of dead workers.

:func:`open_search` returns an :class:`OpenSearch`, a study ready for this worker's trials
(:mod:`.search` runs them).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Iterable, Sequence

import optuna
from optuna.trial import TrialState
from torch import nn

from diswot.storage import (
    ConfigMismatchError,
    RetryStaleTrial,
    StorageError,
    fail_stale_trials,
    masked_logs,
    open_storage,
    parse_storage_url,
    record,
    record_config,
    storage_url,
)

from .assembly import ScoringSetup, attach_reference, make_sampler, make_scoring, search_constraint
from .config import (
    AVERAGED,
    CHANGEABLE_FIELDS,
    FIXED_FIELDS,
    RECORDED_FIELDS,
    SCORE_FIELDS,
    TEACHER_FIELDS,
    SearchConfig,
    StudyRecord,
    WorkerOptions,
    reference_size_for,
    study_directions,
    uses_reference,
)
from .errors import DiswotError, ScoreChangeError
from .progress import StepProgress
from .worker import sampler_seed

__all__ = ["COUNTED_STATES", "OpenSearch", "WorkerOptions", "open_search", "recorded_proxy"]

log = logging.getLogger(__name__)


#: the trial states that ``max_trials`` counts: scored (or pruned) students; failures are not counted,
#: so a killed worker's trial and its retried copy count once
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


#: the run's settings that the study never records: they may change on every run
UNRECORDED = frozenset(
    {f.name for f in fields(SearchConfig)}
    - {*RECORDED_FIELDS, *TEACHER_FIELDS, "objectives", "max_flops", "reference_size", "extra"}
    | {f.name for f in fields(WorkerOptions)}
    | {"n_trials", "timeout"}
)


@dataclass
class OpenSearch:
    """A study ready for this worker's trials, and what it was opened with."""

    study: optuna.Study
    setup: ScoringSetup
    options: WorkerOptions
    #: the storage URL, password masked
    storage: str
    #: whether Optuna's own heartbeat watches the trials (SQL storages with a heartbeat)
    native_heartbeat: bool
    retry: RetryStaleTrial
    #: whether the study existed (and its record matched)
    resumed: bool
    #: trials of dead workers failed (and re-queued) when the study was opened
    stale: list[int] = field(default_factory=list)

    @property
    def config(self) -> SearchConfig:
        return self.setup.config

    def counted(self) -> int:
        """The study's trials that ``max_trials`` counts."""
        return len(self.study.get_trials(deepcopy=False, states=COUNTED_STATES))

    def completed(self) -> int:
        return len(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    def capped(self) -> bool:
        """Whether the study holds ``max_trials`` counted trials already."""
        return self.options.max_trials is not None and self.counted() >= self.options.max_trials

    def note_config(self) -> dict[str, Any]:
        """What the study note shows about the search."""
        config, options = self.config, self.options
        return {
            "study": options.study_name,
            "storage": self.storage,
            **self.setup.recorded(),
            "sampler": config.sampler,
            "population_size": config.population_size,
            "tournament_size": config.tournament_size,
            "max_trials": options.max_trials,
            "heartbeat": options.heartbeat,
        }


def mutable_fields(names: Iterable[str]) -> set[str]:
    """The recorded fields that ``names`` (``--allow-change`` values, comma lists too) allow to change."""
    fields = set()
    for name in names:
        for part in name.split(","):
            field_name = part.strip().lstrip("-").replace("-", "_")
            if field_name in FIXED_FIELDS:
                raise DiswotError(
                    f"`allow_change` {part}: {field_name} can never change ({FIXED_FIELDS[field_name]}); "
                    "search it in a new `study`"
                )
            if field_name in SCORE_FIELDS:
                raise ScoreChangeError(
                    f"`allow_change` {part}: every stored score, the reference sample and the pick scores were "
                    f"computed with the study's {field_name}, and another would mix two scores in one study; "
                    "search it in a new `study`",
                    field_name,
                )
            if field_name in CHANGEABLE_FIELDS:
                fields.add(field_name)
            elif field_name in UNRECORDED:
                log.info("`allow_change` %s: %s is never recorded and may always change", part, field_name)
            else:
                raise DiswotError(
                    f"`allow_change` {part!r}: not a recorded field; valid: {', '.join(CHANGEABLE_FIELDS)}"
                )
    return fields


def _study_record(url: str, study_name: str) -> StudyRecord | None:
    """The configuration recorded on the study in ``url``, typed; ``None`` when the storage or study
    does not exist (or records none); creates nothing."""
    try:
        backend = open_storage(url, must_exist=True)
    except StorageError:
        return None
    return StudyRecord.read(record.study_config(backend, study_name))


def recorded_proxy(storage: str | optuna.storages.BaseStorage | None, study_name: str) -> str | None:
    """The proxy recorded on an existing study (None for a new study or storage); creates nothing.

    ``storage``: a storage or its URL (default ``$DISWOT_STORAGE``, else ``sqlite:///diswot.db``).
    """
    if not isinstance(storage, optuna.storages.BaseStorage):
        try:
            storage = open_storage(storage_url(storage), must_exist=True)
        except StorageError:
            return None
    value = record.study_config(storage, study_name).get("proxy")
    return value if isinstance(value, str) else None


def _sized_to_the_search(config: SearchConfig, recorded: StudyRecord | None, n_trials: int | None) -> SearchConfig:
    """``config`` with its reference size resolved: the given one, the study's, or sized to ``n_trials``."""
    if config.reference_size is not None or not uses_reference(config.proxy):
        return config
    stored = recorded.config.reference_size if recorded is not None else None
    return replace(config, reference_size=stored if stored is not None else reference_size_for(n_trials))


def _drawn_as_the_study(config: SearchConfig, recorded: StudyRecord | None, study_name: str) -> SearchConfig:
    """``config`` with the study's ``init_draw`` where none is given (``stream`` for a study recorded
    before the choice, whose record holds none); a given one that differs is refused, as every
    score field is (such a record would not compare it)."""
    if recorded is None:
        return config
    stored = recorded.config.drawn
    if config.init_draw is None:
        return replace(config, init_draw=stored)
    if config.init_draw != stored:
        raise ConfigMismatchError(
            f"study {study_name!r} was created with a different configuration (init_draw: {stored!r} -> "
            f"{config.init_draw!r}); use the original options, or a new `study` name"
        )
    return config


def _as_recorded(config: dict[str, Any], stored: Any) -> dict[str, Any]:
    """``config`` with the stored ``teacher_weights`` where both name the same file: studies made before
    paths were recorded absolute hold the relative path they were given."""
    old, new = (
        (stored or {}).get("teacher_weights") if isinstance(stored, dict) else None,
        config.get("teacher_weights"),
    )
    if isinstance(old, str) and new and not os.path.isabs(old) and os.path.abspath(old) == new:
        return {**config, "teacher_weights": old}
    return config


def _record_study(study: optuna.Study, setup: ScoringSetup, mutable: set[str]) -> bool:
    """Record the configuration on a new study, or check it against a resumed one's; name the objectives."""
    objectives = setup.config.objectives
    recorded = _as_recorded(setup.recorded(), study.user_attrs.get(record.CONFIG))
    if record.CONFIG not in study.user_attrs:  # a study from elsewhere: check it before writing to it
        check_directions(study, objectives)
    try:
        # studies made before the teacher's fingerprint and the init draw were recorded resume without them
        resumed: bool = record_config(
            study, recorded, mutable=mutable, optional=("teacher_fingerprint", AVERAGED, "init_draw")
        )
    except ConfigMismatchError as exc:
        stored = study.user_attrs.get(record.CONFIG) or {}
        differ = {k for k in {*stored, *recorded} if stored.get(k) != recorded.get(k)} - mutable
        if differ <= set(CHANGEABLE_FIELDS):  # a limit: it may change; a score field never does
            raise ConfigMismatchError(f"{exc}, or allow it with `allow_change` FIELD") from None
        raise
    stored = study.user_attrs.get(record.CONFIG) or {}
    # a study of several repeats made before averaged its trials' raw terms: it goes on doing so
    setup.scorer.average_terms = AVERAGED in recorded and AVERAGED not in stored
    check_directions(study, objectives)
    name_metrics(study, objectives)
    if len(study.directions) == 1:  # optuna-dashboard names the objective after the proxy
        name_objective(study, setup.config.proxy)
    return resumed


def open_search(
    config: SearchConfig,
    storage: str | None = None,
    options: WorkerOptions = WorkerOptions(),
    *,
    on_reference: Callable[[SearchConfig, bool], None] | None = None,
    progress: StepProgress | None = None,
    n_trials: int | None = None,
    teacher: nn.Module | None = None,
) -> OpenSearch:
    """Open (or create) the study for ``config`` in ``storage`` and make it ready for this worker.

    ``storage`` is a storage URL (default ``$DISWOT_STORAGE``, else ``sqlite:///diswot.db``). The
    configuration is recorded on a new study, or checked against the study's record (a mismatch
    raises :class:`~diswot.storage.ConfigMismatchError` with the diff); a rank-aggregated score
    gets its reference sample (``on_reference(config, reused)`` is called first: ``reused`` when the
    study has it stored; a new one is scored under ``progress``); trials of dead workers are failed
    and re-queued. ``n_trials``, the trials this run adds, sizes the reference sample of a new study
    (:func:`~.config.reference_size_for`). ``teacher`` is a module to use as the teacher, named
    ``config.teacher`` (its fingerprint is recorded, so another module under the name is refused).
    Storage passwords are masked in the log records made meanwhile.
    """
    with masked_logs():
        url = storage_url(storage)
        mutable = mutable_fields(options.allow_change)
        recorded = _study_record(url, options.study_name)
        config = _drawn_as_the_study(config, recorded, options.study_name)
        if config.reference_size is None and uses_reference(config.proxy):
            config = _sized_to_the_search(config, recorded, n_trials)
        # teacher, data, limits and probe batch are checked before the storage is created: a refused
        # search leaves nothing behind
        setup = make_scoring(config, teacher=teacher)
        parsed = parse_storage_url(url)
        retry = RetryStaleTrial(max_retry=options.max_retry)
        native = parsed.kind == "rdb" and options.heartbeat is not None
        seed = sampler_seed(config.seed, options.worker_index)
        study = _create_study(url, setup, options, seed=seed, native=native, retry=retry)
        resumed = _record_study(study, setup, mutable)
        _study_reference(study, setup, on_reference, progress)
        log.info("worker %d: study %s in %s, sampler seed %d", options.worker_index, options.study_name, parsed, seed)
        stale = fail_stale_trials(study, grace_period=options.grace, retry=retry)
        return OpenSearch(study, setup, options, str(parsed), native, retry, resumed, stale)


def _create_study(
    url: str, setup: ScoringSetup, options: WorkerOptions, *, seed: int, native: bool, retry: RetryStaleTrial
) -> optuna.Study:
    """The study in ``url`` (created if new) with this worker's sampler; Optuna's heartbeat where ``native``."""
    config = setup.config
    backend = open_storage(
        url,
        heartbeat_interval=options.heartbeat if native else None,
        grace_period=options.grace if native else None,
        stale_trial_callback=retry if native else None,
        async_commit=True,  # a trial's small writes are not flushed to the disk one by one
    )
    sampler = make_sampler(
        config.sampler,
        space=setup.space,
        limits=setup.limits,
        num_classes=setup.num_classes,
        seed=seed,
        population_size=config.population_size,
        tournament_size=config.tournament_size,
        constraint=search_constraint(setup, config.max_flops),
        objectives=len(config.objectives),
    )
    return optuna.create_study(
        storage=backend,
        study_name=options.study_name,
        directions=study_directions(config.objectives),
        sampler=sampler,
        load_if_exists=True,
    )


def _study_reference(
    study: optuna.Study,
    setup: ScoringSetup,
    on_reference: Callable[[SearchConfig, bool], None] | None,
    progress: StepProgress | None,
) -> None:
    """Attach the study's reference sample: the stored one (reused), or a new one scored under ``progress``."""
    if not setup.scorer.proxy.reference_terms:
        return
    reused = record.reference_sample(study) is not None
    if on_reference is not None:
        on_reference(setup.config, reused)
    if reused or progress is None:
        attach_reference(setup, study)
        return
    with progress(f"{setup.config.proxy}: reference sample", setup.config.reference_size or 0) as advance:
        attach_reference(setup, study, on_arch=advance)


def name_objective(study: optuna.Study, proxy: str) -> None:
    """Name the objective after the proxy (Optuna's metric names): optuna-dashboard's plots and best-trial card show it."""
    if study.metric_names == [proxy]:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([proxy])


def check_directions(study: optuna.Study, objectives: Sequence[str]) -> None:
    """Refuse a study whose directions do not match ``objectives`` (e.g. created by another tool)."""
    want = study_directions(objectives)
    if list(study.directions) != want:
        have = ", ".join(d.name.lower() for d in study.directions)
        raise DiswotError(
            f"study {study.study_name!r} has directions ({have}) but `objectives` {','.join(objectives)} needs "
            f"({', '.join(d.name.lower() for d in want)}); use the study's objectives or another `study`"
        )


def name_metrics(study: optuna.Study, objectives: Sequence[str]) -> None:
    """Name a multi-objective study's values (optuna-dashboard labels its Pareto-front plot with them)."""
    if len(objectives) > 1 and study.metric_names != list(objectives):
        with warnings.catch_warnings():  # experimental since Optuna 3.2, stable in use
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(objectives))
