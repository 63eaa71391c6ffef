"""A DisWOT search as a library: ``run_search(config, storage) -> optuna.Study``.

A search opens its study (:func:`~.study.open_search`: storage, recorded configuration, reference
sample, stale trials), runs this worker's trials (:func:`run_trials`) with the dashboard's study
note (:class:`~.notes.StudyNotes`), and ends with the pick (:func:`pick_search`: the best students
re-scored before one is recommended). ``diswot search`` is :func:`run_search` with
:class:`SearchHooks`: it prints, draws a progress bar and runs its extra local workers alongside.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, ContextManager, Sequence

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial
from torch import nn

from diswot.storage import fail_stale_trials, has_native_heartbeat, masked_logs, study_storage, worker_identity

from .assembly import ScoringSetup, make_scoring
from .config import SearchConfig
from .errors import DiswotError
from .notes import StudyNotes
from .objectives import TRIAL_ERRORS, make_objective
from .pick import pick_size, pick_study
from .progress import StepProgress, text_steps
from .study import COUNTED_STATES, OpenSearch, WorkerOptions, open_search
from .worker import Interrupts, WorkerObjective

__all__ = ["SearchHooks", "TrialCallback", "pick_search", "run_search", "run_trials"]

log = logging.getLogger(__name__)

#: how often a worker looks for stale RUNNING trials during a search (it scans the study's trials)
STALE_CHECK_SECONDS = 30.0

TrialCallback = Callable[[optuna.Study, FrozenTrial], None]


@dataclass(frozen=True)
class SearchHooks:
    """What a caller of :func:`run_search` adds to a search; every hook is optional."""

    #: before the reference sample of a rank-aggregated score: ``(config, reused)``, ``reused`` when
    #: the study has it stored
    on_reference: Callable[[SearchConfig, bool], None] | None = None
    #: the study is open, before any trial (also when ``max_trials`` leaves nothing to run)
    on_open: Callable[[OpenSearch], None] | None = None
    #: a context manager entered around this worker's trials (e.g. other workers started and
    #: waited for); it gets the opened search and the interrupts that stop the trials
    alongside: Callable[[OpenSearch, Interrupts], ContextManager[Any]] | None = None
    #: before the pick re-scores: ``(opened search, students to re-score)``
    on_pick: Callable[[OpenSearch, int], None] | None = None


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
    if not has_native_heartbeat(study_storage(run.study)[0]):
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
    progress: bool | StepProgress = True,
    pick: bool = True,
    study_trials: int | None = None,
    hooks: SearchHooks = SearchHooks(),
    **options: Any,
) -> optuna.Study:
    """Run (or resume) a DisWOT search of ``n_trials`` trials in ``storage`` and return its study.

    ``storage`` is a storage URL (default ``$DISWOT_STORAGE``, else ``sqlite:///diswot.db``);
    ``options`` are the :class:`~.study.WorkerOptions` (``max_trials``, ``heartbeat``,
    ``note_every``, ``allow_change``, ...). ``teacher`` is an ``nn.Module`` to distil from, named by
    ``config.teacher`` (README, "Teachers"): its features and classifier are found as for a named
    teacher. ``progress`` reports the reference sample and the pick: ``True`` as lines on stderr
    (:func:`~.progress.text_steps`), or any :data:`~.progress.StepProgress`. ``pick=False`` leaves
    the pick out (a worker that others wait for). ``study_trials``, the trials of the whole run when
    several workers share it (default ``n_trials``), sizes a new study's reference sample.
    Many processes may run it on one study: each is a worker. Ctrl-C (or SIGTERM) fails the running
    trial, so nothing stays RUNNING, and raises :class:`KeyboardInterrupt`.
    """
    if n_trials < 1:
        raise DiswotError(f"n_trials must be >= 1, got {n_trials}")
    worker = WorkerOptions(study_name=study_name, **options)
    shown = (text_steps() if progress else None) if isinstance(progress, bool) else progress
    with masked_logs():  # the process's log-record factory is restored afterwards
        run = open_search(
            config,
            storage,
            worker,
            on_reference=hooks.on_reference,
            progress=shown,
            n_trials=study_trials or n_trials,
            teacher=teacher,
        )
        if hooks.on_open is not None:
            hooks.on_open(run)
        if run.capped():
            return run.study
        _run_worker(run, n_trials, timeout=timeout, callbacks=callbacks, hooks=hooks)
        if pick:
            pick_search(run, progress=shown, on_pick=hooks.on_pick)
    return run.study


def _run_worker(
    run: OpenSearch,
    n_trials: int,
    *,
    timeout: float | None,
    callbacks: Sequence[TrialCallback],
    hooks: SearchHooks,
) -> None:
    """This worker's trials with its dashboard notes, Ctrl-C handling and the hooks' work alongside."""
    every = run.options.note_every
    notes = StudyNotes(run.study, run.note_config(), every=every) if every else None
    interrupts = Interrupts()
    with interrupts.installed():
        if notes is not None:
            notes.write()
        try:
            with hooks.alongside(run, interrupts) if hooks.alongside else contextlib.nullcontext():
                run_trials(run, n_trials, timeout=timeout, callbacks=callbacks, notes=notes, interrupts=interrupts)
        finally:
            if notes is not None:
                notes.write()  # with every worker's trials


def pick_search(
    run: OpenSearch,
    *,
    progress: StepProgress | None = None,
    on_pick: Callable[[OpenSearch, int], None] | None = None,
) -> dict[str, float]:
    """The pick (:mod:`.pick`): re-score the study's best students; their pick scores.

    The re-scoring runs the study's scorer with more repeats: the same teacher module, reference
    sample and teacher sides of the study's own repeats, built here only when a student is re-scored.
    """
    config = run.config
    top = pick_size(run.study, config.pick_top)
    if len(run.study.directions) != 1 or top < 1 or not run.completed():
        return {}
    if on_pick is not None:
        on_pick(run, top)

    def rescoring(repeats: int) -> ScoringSetup:
        scorer = run.setup.scorer
        more = replace(config, repeats=repeats)
        return make_scoring(
            more, teacher=run.setup.teacher_module, reference=scorer.reference, contexts=scorer.prepared()
        )

    return pick_study(
        run.study, run.setup, rescoring=rescoring, top=top, repeats=config.pick_repeats, progress=progress
    )
