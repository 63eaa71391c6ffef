"""A search worker's side of each trial: who runs it, its heartbeat, its dashboard note, and a clean
stop on Ctrl-C or SIGTERM.

Many workers may share one study (several ``diswot search`` processes, on one host or many): each
marks its trials with its identity, beats their heartbeat where Optuna's storage does not, and
samples with its own seed (:func:`sampler_seed`), while the probe batch stays the study's.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import optuna

from diswot.storage import (
    TrialHeartbeat,
    cached_frozen_trial,
    dashboard_note_attrs,
    deferred_user_attrs,
    in_optimize_loop,
    mark_trial_worker,
    mask_url,
    record,
    trial_storage,
    write_attrs,
)

from .notes import trial_note, write_trial_note

__all__ = ["Interrupts", "WorkerObjective", "sampler_seed"]

log = logging.getLogger(__name__)


def sampler_seed(seed: int, worker_index: int | None) -> int:
    """Worker 0 (or a lone worker) samples with ``seed``; worker ``i`` with a seed derived from both."""
    if not worker_index:
        return seed
    return int(np.random.SeedSequence([seed, worker_index]).generate_state(1)[0])


class Interrupts:
    """Ctrl-C / SIGTERM: fail the running trial at once, or stop after the current ask/tell.

    Inside the objective a signal raises KeyboardInterrupt, which Optuna records as a FAIL of the
    running trial. Elsewhere (ask, tell, callbacks) it stops the optimize loop after the step, so
    no trial is left RUNNING. A repeated signal is ignored once (a parent forwarding a terminal's
    Ctrl-C), the third raises at once.
    """

    def __init__(self) -> None:
        self.count = 0
        self.in_objective = False
        self.study: optuna.Study | None = None
        self._previous: dict[int, Any] = {}

    @property
    def interrupted(self) -> bool:
        return self.count > 0

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1  # no logging here: a signal handler must not take the logging lock
        if self.in_objective or self.count >= 3:
            self.in_objective = False
            raise KeyboardInterrupt
        study = self.study
        if study is not None and in_optimize_loop(study):
            study.stop()

    @contextlib.contextmanager
    def installed(self) -> Iterator[Interrupts]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)


class WorkerObjective:
    """The search objective plus the worker's bookkeeping: owner, heartbeat, trial note."""

    def __init__(
        self,
        *,
        objective: Callable[[optuna.Trial], float | Sequence[float]],
        interrupts: Interrupts,
        identity: dict[str, Any],
        heartbeat: int | None,
        notes: bool,
    ) -> None:
        if not callable(objective):
            raise TypeError(f"objective must be callable, f(trial) -> float; got {objective!r}")
        if heartbeat is not None and heartbeat <= 0:
            raise ValueError(f"heartbeat must be None or > 0 seconds, got {heartbeat!r}")
        self.objective = objective
        self.interrupts = interrupts
        self.identity = identity
        self.heartbeat = heartbeat
        self.notes = notes

    def __call__(self, trial: optuna.Trial) -> float | Sequence[float]:
        if self.interrupts.interrupted:
            raise KeyboardInterrupt
        storage, _, trial_id = trial_storage(trial)
        mark_trial_worker(storage, trial_id, self.identity)
        beat = (
            TrialHeartbeat(storage=storage, trial_id=trial_id, interval=self.heartbeat)
            if self.heartbeat
            else contextlib.nullcontext()
        )
        self.interrupts.in_objective = True
        # the arch is written at once (the dashboard shows what a running trial scores, and a killed
        # worker's trial keeps it); the other user attributes and the note go in one write at the end
        with deferred_user_attrs(trial, eager=(record.ARCH,)) as pending:
            try:
                with beat:
                    value = self.objective(trial)
            except KeyboardInterrupt:
                self.interrupts.in_objective = False
                self._record_quietly(trial, pending, note=False)
                raise
            except Exception:
                self.interrupts.in_objective = False
                self._record_quietly(trial, pending, note=self.notes)
                raise
            finally:
                self.interrupts.in_objective = False
        self._record(trial, pending, note=self.notes, score=value if isinstance(value, (int, float)) else value[0])
        return value

    def _record(
        self, trial: optuna.Trial, user_attrs: dict[str, Any], *, note: bool, score: float | None = None
    ) -> None:
        """Write the trial's user attributes and its dashboard note in one storage round trip."""
        storage, study_id, trial_id = trial_storage(trial)
        note_attrs = None
        if note:
            # the trial as it stands: params, user attributes, and the system attributes it was
            # created with (a retried trial's ``failed_trial``), without reading it back
            note_attrs = dashboard_note_attrs(trial_id, trial_note(cached_frozen_trial(trial), score=score))
        write_attrs(storage, trial_id=trial_id, user_attrs=user_attrs, study_id=study_id, study_system_attrs=note_attrs)
        if note and note_attrs is None:  # another optuna-dashboard layout
            write_trial_note(trial, score=score)

    def _record_quietly(self, trial: optuna.Trial, user_attrs: dict[str, Any], *, note: bool) -> None:
        """:meth:`_record` for a failing trial: a storage error is logged (the trial's own error is raised)."""
        try:
            self._record(trial, user_attrs, note=note)
        except Exception as exc:
            log.warning("could not record the attributes of trial %d: %s", trial.number, mask_url(str(exc))[:200])
