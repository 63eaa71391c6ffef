"""A DisWOT search as a library: ``run_search(config, storage) -> optuna.Study``.

``diswot search`` parses its options and calls the same pieces: :func:`open_search` (storage,
heartbeat, the study's recorded configuration, stale trials of dead workers, the reference
sample), :class:`~diswot.pipeline.notes.StudyNotes` (the dashboard's study note) and
:func:`run_trials` (this worker's optimize loop).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Sequence

import optuna
from optuna.study import MaxTrialsCallback
from torch import nn
from optuna.trial import FrozenTrial, TrialState

from diswot.storage import (
    CONFIG_ATTR,
    ConfigMismatchError,
    RetryStaleTrial,
    fail_stale_trials,
    has_native_heartbeat,
    install_log_masking,
    open_storage,
    parse_storage_url,
    record_config,
    worker_identity,
)

from ._options import storage_url
from .confirm import confirm_study, pick_size
from .config import (
    CHANGEABLE_FIELDS,
    DEFAULT_PROXY,
    FIXED_FIELDS,
    SearchConfig,
    reference_size_for,
    uses_reference,
)
from .errors import DiswotError
from .notes import StudyNotes
from .progress import StepProgress, steps
from .objectives import check_directions, make_objective, name_metrics, search_constraint, study_directions
from .search import TRIAL_ERRORS, ScoringSetup, attach_reference, make_sampler, make_scoring, name_objective
from .workers import Interrupts, WorkerObjective, sampler_seed

__all__ = [
    "COUNTED_STATES",
    "OpenSearch",
    "WorkerOptions",
    "confirm_search",
    "open_search",
    "recorded_proxy",
    "run_search",
    "run_trials",
]

log = logging.getLogger(__name__)

#: the trial states that ``max_trials`` counts: scored (or pruned) students; failures are not counted,
#: so a killed worker's trial and its retried copy count once
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
#: how often a worker looks for stale RUNNING trials during a search (it scans the study's trials)
STALE_CHECK_SECONDS = 30.0
#: options that are never recorded on the study and may change on every run
UNRECORDED = (
    "n_trials",
    "timeout",
    "data_dir",
    "device",
    "workers",
    "worker_index",
    "max_trials",
    "heartbeat",
    "grace_period",
    "max_retry",
    "sampler",
    "population_size",
    "tournament_size",
    "top",
    "note_every",
    "confirm_top",
    "confirm_repeats",
)

TrialCallback = Callable[[optuna.Study, FrozenTrial], None]


@dataclass(frozen=True)
class WorkerOptions:
    """How this worker runs the study; none of it is recorded on the study."""

    study_name: str = "diswot"
    #: this worker's index: its own sampler seed (the probe batch stays the study's)
    worker_index: int = 0
    #: stop once the study holds this many COMPLETE or PRUNED trials
    max_trials: int | None = None
    #: seconds between heartbeats of a running trial; a silent trial is failed and retried
    heartbeat: int | None = None
    #: silence before a trial is stale (default 2 x heartbeat)
    grace_period: int | None = None
    #: retries of a trial whose worker died
    max_retry: int = 3
    #: update the dashboard's study note every N trials (0: no notes)
    note_every: int = 10
    #: recorded fields that may differ from the study's record when resuming
    allow_change: tuple[str, ...] = ()
    #: a resumed study keeps the proxy it recorded, whatever the config says (``--proxy`` left out)
    keep_study_proxy: bool = False
    #: score every trial's student, even one the study has scored (for timing the scorer)
    rescore: bool = False

    def __post_init__(self) -> None:
        for name, minimum in (
            ("max_trials", 1),
            ("heartbeat", 1),
            ("grace_period", 1),
            ("max_retry", 0),
            ("note_every", 0),
            ("worker_index", 0),
        ):
            value = getattr(self, name)
            if value is not None and value < minimum:
                raise DiswotError(f"--{name.replace('_', '-')} must be >= {minimum}, got {value}")
        if self.grace_period is not None and self.heartbeat is None:
            raise DiswotError("--grace-period needs --heartbeat SECONDS")

    @property
    def grace(self) -> int | None:
        """The grace period in force: the given one, else twice the heartbeat (None without one)."""
        return self.grace_period or (2 * self.heartbeat if self.heartbeat else None)


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
                    f"--allow-change {part}: {field_name} can never change ({FIXED_FIELDS[field_name]}); "
                    "search it in a new --study"
                )
            if field_name in CHANGEABLE_FIELDS:
                fields.add(field_name)
                if field_name == "teacher":  # another teacher has another fingerprint and input
                    fields.update(("teacher_fingerprint", "teacher_image_size"))
            elif field_name in UNRECORDED:
                log.info("--allow-change %s: %s is never recorded and may always change", part, field_name)
            else:
                raise DiswotError(
                    f"--allow-change {part!r}: not a recorded field; valid: {', '.join(CHANGEABLE_FIELDS)}"
                )
    return fields


def _study_config(url: str, study_name: str) -> dict[str, Any]:
    """The configuration recorded on the study in ``url``, empty when the storage or study does not
    exist; creates nothing."""
    from diswot.storage import StorageError

    try:
        backend = open_storage(url, must_exist=True)
    except StorageError:
        return {}
    return _recorded(backend, study_name)


def recorded_proxy(storage: optuna.storages.BaseStorage, study_name: str) -> str | None:
    """The proxy recorded on an existing study (None for a new study); creates nothing."""
    value = _recorded(storage, study_name).get("proxy")
    return value if isinstance(value, str) else None


def _recorded(storage: optuna.storages.BaseStorage, study_name: str) -> dict[str, Any]:
    """The configuration recorded on an existing study (empty for a new study); creates nothing."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return {}
    config = storage.get_study_user_attrs(study_id).get(CONFIG_ATTR) or {}
    return config if isinstance(config, dict) else {}


def _sized_to_the_search(config: SearchConfig, recorded_config: dict[str, Any], n_trials: int | None) -> SearchConfig:
    """``config`` with its reference size resolved: the given one, the study's, or sized to ``n_trials``."""
    if config.reference_size is not None or not uses_reference(config.proxy):
        return config
    recorded = recorded_config.get("reference_size")
    size = recorded if isinstance(recorded, int) else reference_size_for(n_trials)
    return replace(config, reference_size=size)


def _as_recorded(config: dict[str, Any], stored: Any) -> dict[str, Any]:
    """``config`` with the stored ``teacher_weights`` where both name the same file: studies made before
    paths were recorded absolute hold the relative path they were given."""
    import os

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
    recorded = _as_recorded(setup.recorded(), study.user_attrs.get(CONFIG_ATTR))
    if CONFIG_ATTR not in study.user_attrs:  # a study from elsewhere: check it before writing to it
        check_directions(study, objectives)
    try:
        # studies made before the teacher's fingerprint was recorded resume without one
        resumed: bool = record_config(study, recorded, mutable=mutable, optional=("teacher_fingerprint",))
    except ConfigMismatchError as exc:
        raise ConfigMismatchError(f"{exc}, or allow it with --allow-change FIELD") from None
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
    """
    install_log_masking()
    url = storage_url(storage)
    mutable = mutable_fields(options.allow_change)
    parsed = parse_storage_url(url)
    retry = RetryStaleTrial(max_retry=options.max_retry)
    native = parsed.kind == "rdb" and options.heartbeat is not None
    recorded: dict[str, Any] | None = None  # read once, only when needed
    if options.keep_study_proxy:  # a resumed study keeps its score; a new one gets the config's
        recorded = _study_config(url, options.study_name)
        config = replace(config, proxy=recorded.get("proxy") or config.proxy or DEFAULT_PROXY)
    if config.reference_size is None and uses_reference(config.proxy):
        recorded = _study_config(url, options.study_name) if recorded is None else recorded
        config = _sized_to_the_search(config, recorded, n_trials)
    # teacher, data, limits and probe batch are checked before the storage is created: a refused
    # search leaves nothing behind
    setup = make_scoring(config, teacher=teacher)
    backend = open_storage(
        url,
        heartbeat_interval=options.heartbeat if native else None,
        grace_period=options.grace if native else None,
        stale_trial_callback=retry if native else None,
        async_commit=True,  # a trial's small writes are not flushed to the disk one by one
    )
    seed = sampler_seed(config.seed, options.worker_index)
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
    study = optuna.create_study(
        storage=backend,
        study_name=options.study_name,
        directions=study_directions(config.objectives),
        sampler=sampler,
        load_if_exists=True,
    )
    resumed = _record_study(study, setup, mutable)
    _study_reference(study, setup, on_reference, progress)
    log.info("worker %d: study %s in %s, sampler seed %d", options.worker_index, options.study_name, parsed, seed)
    stale = fail_stale_trials(study, grace_period=options.grace, retry=retry)
    return OpenSearch(study, setup, options, str(parsed), native, retry, resumed, stale)


def _study_reference(
    study: optuna.Study,
    setup: ScoringSetup,
    on_reference: Callable[[SearchConfig, bool], None] | None,
    progress: StepProgress | None,
) -> None:
    """Attach the study's reference sample: the stored one (reused), or a new one scored under ``progress``."""
    if not setup.scorer.proxy.reference_terms:
        return
    from .reference import REFERENCE_ATTR

    reused = REFERENCE_ATTR in study._storage.get_study_system_attrs(study._study_id)
    if on_reference is not None:
        on_reference(setup.config, reused)
    if reused or progress is None:
        attach_reference(setup, study)
        return
    with progress(f"{setup.config.proxy}: reference sample", setup.config.reference_size or 0) as advance:
        attach_reference(setup, study, on_arch=advance)


class _QuietKnownFailures(logging.Filter):
    """Optuna's two warnings about a trial failed for a known reason -> one short line.

    Optuna prints the whole params dict and the traceback; the reason is enough (the params are
    in the storage). A trial stopped by Ctrl-C or SIGTERM gets no warning: the search says so.
    """

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, KeyboardInterrupt):
            return False
        message = record.getMessage() if record.name.startswith("optuna") else ""
        if re.fullmatch(r"Trial \d+ failed with value None\.", message):
            return False  # the first warning said why
        if isinstance(exc, TRIAL_ERRORS):
            number = re.match(r"Trial (\d+) ", message)
            record.msg, record.args = f"Trial {number[1] if number else '?'} failed: {exc}", None
            record.exc_info = record.exc_text = None
        return True


def _throttled(check: Callable[[optuna.Study], object], seconds: float) -> TrialCallback:
    """A trial callback that runs ``check(study)`` at most once every ``seconds``."""
    last = time.monotonic()

    def callback(study: optuna.Study, trial: FrozenTrial) -> None:
        nonlocal last
        if time.monotonic() - last >= seconds:
            last = time.monotonic()
            check(study)

    return callback


def _worker_callbacks(run: OpenSearch, notes: StudyNotes | None) -> list[TrialCallback]:
    """The callbacks after each trial: the ``max_trials`` cap, the stale-trial scan, the study note."""
    options = run.options
    callbacks: list[TrialCallback] = []
    if options.max_trials is not None:
        callbacks.append(MaxTrialsCallback(options.max_trials, states=COUNTED_STATES))
    if not has_native_heartbeat(run.study._storage):
        grace, retry = options.grace, run.retry
        callbacks.append(
            _throttled(lambda s: fail_stale_trials(s, grace_period=grace, retry=retry), STALE_CHECK_SECONDS)
        )
    if notes is not None:
        callbacks.append(notes.callback)
    return callbacks


def run_trials(
    run: OpenSearch,
    n_trials: int,
    *,
    timeout: float | None = None,
    callbacks: Sequence[TrialCallback] = (),
    notes: StudyNotes | None = None,
    interrupts: Interrupts | None = None,
) -> None:
    """This worker's loop: ``n_trials`` trials (or until ``timeout`` seconds) on the opened study.

    Each trial is marked with this worker, beats its heartbeat (where Optuna's does not) and gets
    its dashboard note (with ``notes``); a student that fails for a known reason fails its trial
    only, with one short log line. ``callbacks`` run first after each trial. A Ctrl-C or SIGTERM
    caught by ``interrupts`` (installed by the caller) fails the running trial and raises
    :class:`KeyboardInterrupt` once the loop has stopped.
    """
    interrupts = interrupts or Interrupts()
    interrupts.study = run.study
    objective = WorkerObjective(
        objective=make_objective(run.setup, run.config.objectives, run.config.max_flops, reuse=not run.options.rescore),
        interrupts=interrupts,
        identity={**worker_identity(), "index": run.options.worker_index},
        heartbeat=None if run.native_heartbeat else run.options.heartbeat,
        notes=notes is not None,
    )
    # Optuna's trial-failure warnings come from child loggers: filter at the handlers.
    quiet = _QuietKnownFailures()
    handlers = {*logging.getLogger("optuna").handlers, *logging.getLogger().handlers}
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        if interrupts.interrupted:
            raise KeyboardInterrupt
        run.study.optimize(
            objective,
            n_trials=n_trials,
            timeout=timeout,
            catch=TRIAL_ERRORS,
            callbacks=[*callbacks, *_worker_callbacks(run, notes)],
        )
        if interrupts.interrupted:
            raise KeyboardInterrupt
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


def run_search(
    config: SearchConfig,
    storage: str | None = None,
    *,
    n_trials: int = 100,
    timeout: float | None = None,
    study_name: str = "diswot",
    callbacks: Sequence[TrialCallback] = (),
    teacher: nn.Module | None = None,
    progress: bool = True,
    **options: Any,
) -> optuna.Study:
    """Run (or resume) a DisWOT search of ``n_trials`` trials in ``storage`` and return its study.

    ``storage`` is a storage URL (default ``$DISWOT_STORAGE``, else ``sqlite:///diswot.db``);
    ``options`` are the :class:`WorkerOptions` (``max_trials``, ``heartbeat``, ``note_every``,
    ``allow_change``, ...). ``teacher`` is an ``nn.Module`` to distil from, named by ``config.teacher``
    (README, "Teachers"): its features and classifier are found as for ``--teacher``. ``progress``
    shows the reference sample and the pick on stderr (a bar on a terminal, else a line every 30 s).
    Many processes may run it on one study: each is a worker. Ctrl-C
    (or SIGTERM) fails the running trial, so nothing stays RUNNING, and raises
    :class:`KeyboardInterrupt`.
    """
    if n_trials < 1:
        raise DiswotError(f"--n-trials must be >= 1, got {n_trials}")
    worker = WorkerOptions(study_name=study_name, **options)
    shown = _stderr_steps() if progress else None
    run = open_search(config, storage, worker, progress=shown, n_trials=n_trials, teacher=teacher)
    if run.capped():
        return run.study
    notes = StudyNotes(run.study, run.note_config(), every=worker.note_every) if worker.note_every else None
    interrupts = Interrupts()
    with interrupts.installed():
        if notes is not None:
            notes.write()
        try:
            run_trials(run, n_trials, timeout=timeout, callbacks=callbacks, notes=notes, interrupts=interrupts)
        finally:
            if notes is not None:
                notes.write()
    confirm_search(run, progress=shown)
    return run.study


def _stderr_steps() -> StepProgress:
    """:func:`~.progress.steps` on stderr, for :func:`run_search`."""
    from rich.console import Console

    console = Console(stderr=True)
    return lambda label, total: steps(console, label, total)


def confirm_search(run: OpenSearch, *, progress: StepProgress | None = None) -> dict[str, float]:
    """The pick (:mod:`.confirm`): re-score the study's best students; their confirmed scores."""
    config = run.config
    top = pick_size(run.study, config.confirm_top)
    if len(run.study.directions) != 1 or top < 1:
        return {}
    return confirm_study(run.study, run.setup, top=top, repeats=config.confirm_repeats, progress=progress)
