"""Heartbeats and stale RUNNING trials: a dead worker loses nothing.

* RDB storages use Optuna's native heartbeat (``RDBStorage(heartbeat_interval=...)``): before
  each trial, ``study.optimize`` fails the trials whose heartbeat is older than the grace period
  and hands them to :class:`RetryStaleTrial`.
* Journal (file, Redis) and gRPC storages have no native heartbeat. Each trial records which
  worker runs it (:data:`~.record.WORKER`) and, when a heartbeat interval is given, a timestamp
  refreshed by :class:`TrialHeartbeat` (:data:`~.record.HEARTBEAT`). :func:`fail_stale_trials`, run
  when a worker starts and after each of its trials, fails a RUNNING trial whose worker process
  is gone (same host and PID namespace) or whose timestamp is older than the grace period, and
  retries it.

A retried trial is a WAITING copy with the same params (Optuna's
:class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`, which replaces the deprecated
``RetryFailedTrialCallback``); ``study.optimize`` pops it before sampling anything new, and the
params already set on it are used as they are (the sampler is not asked for them).
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import threading
import time
import warnings
from typing import Any

import optuna
from optuna.storages import BaseStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from . import record
from ._optuna import heartbeat_enabled, stale_trial_ids, study_storage, trial_id_of

__all__ = [
    "RetryStaleTrial",
    "TrialHeartbeat",
    "fail_stale_trials",
    "has_native_heartbeat",
    "mark_trial_worker",
    "worker_identity",
    "worker_is_dead",
]

log = logging.getLogger(__name__)


def _proc_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[19])  # field 22 of proc(5), counted after "pid (comm)"
    except (OSError, IndexError, ValueError):
        return None


def _pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def worker_identity() -> dict[str, Any]:
    """This process, as other workers can check it: host, PID namespace, PID and start time."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pidns": _pid_namespace(), "pid": pid, "start": _proc_start(pid)}


def worker_is_dead(identity: Any) -> bool:
    """True only when ``identity`` is a process of this host and PID namespace that is gone.

    A worker on another host or in another container is never judged (its heartbeat is).
    """
    if not isinstance(identity, dict):
        return False
    pid = identity.get("pid")
    if identity.get("host") != socket.gethostname() or identity.get("pidns") != _pid_namespace():
        return False
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return identity.get("start") not in (None, _proc_start(pid))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        pass
    start = identity.get("start")
    return start is not None and _proc_start(pid) not in (None, start)


def has_native_heartbeat(storage: BaseStorage) -> bool:
    """Whether Optuna's own heartbeat runs for ``storage`` (an RDB storage with an interval)."""
    return heartbeat_enabled(storage)


class RetryStaleTrial:
    """Re-queue a stale trial as a WAITING copy with the same params, at most ``max_retry`` times.

    Wraps Optuna's :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` (the copy's system
    attributes ``failed_trial`` and ``retry_history`` name the original), dropping the dead
    worker's identity and heartbeat from the copy.
    """

    def __init__(self, *, max_retry: int | None = 3) -> None:
        if max_retry is not None and (isinstance(max_retry, bool) or not isinstance(max_retry, int) or max_retry < 0):
            raise ValueError(f"max_retry must be None or an int >= 0, got {max_retry!r}")
        self.max_retry = max_retry
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trial = copy.deepcopy(trial)
        attrs = dict(trial.system_attrs)
        attrs.pop(record.WORKER, None)
        attrs.pop(record.HEARTBEAT, None)
        trial.system_attrs = attrs
        retries = len(attrs.get("retry_history", [])) + 1
        if self.max_retry is not None and retries > self.max_retry:
            log.warning(
                "trial %d of a dead worker failed; not retried (`max_retry` %d reached)", trial.number, self.max_retry
            )
            return
        log.warning("trial %d of a dead worker failed; retrying it with the same params %s", trial.number, trial.params)
        self._retry(study, trial)


def mark_trial_worker(storage: BaseStorage, trial_id: int, identity: dict[str, Any] | None = None) -> None:
    """Record on the trial which worker runs it (see :func:`worker_is_dead`)."""
    storage.set_trial_system_attr(trial_id, record.WORKER, identity or worker_identity())


class TrialHeartbeat:
    """A thread that stamps :data:`~.record.HEARTBEAT` on a running trial every ``interval`` seconds.

    For storages without Optuna's native heartbeat (journal, gRPC). Use as a context manager
    around the objective; it stops when the trial is finished or the context exits.
    """

    def __init__(self, *, storage: BaseStorage, trial_id: int, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.storage = storage
        self.trial_id = trial_id
        self.interval = float(interval)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"diswot-heartbeat-{trial_id}", daemon=True)

    def _beat(self) -> bool:
        try:
            self.storage.set_trial_system_attr(self.trial_id, record.HEARTBEAT, time.time())
        except optuna.exceptions.UpdateFinishedTrialError:
            return False
        except Exception as exc:  # a storage hiccup must not kill the trial; the next beat retries
            log.warning("heartbeat of trial id %d failed: %s", self.trial_id, type(exc).__name__)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self._beat():
                return

    def __enter__(self) -> TrialHeartbeat:
        self._beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _is_stale(trial: FrozenTrial, grace_period: float | None, now: float) -> str | None:
    attrs = trial.system_attrs
    if worker_is_dead(attrs.get(record.WORKER)):
        return "its worker process is gone"
    beat = attrs.get(record.HEARTBEAT)
    if grace_period is not None and isinstance(beat, (int, float)) and now - beat > grace_period:
        return f"no heartbeat for {now - beat:.0f}s (grace period {grace_period:g}s)"
    return None


def fail_stale_trials(
    study: optuna.Study, *, grace_period: float | None = None, retry: RetryStaleTrial | None = None
) -> list[int]:
    """Fail the study's RUNNING trials whose worker is gone or silent, and retry them.

    On a storage with Optuna's native heartbeat this is Optuna's
    :func:`optuna.storages.fail_stale_trials` (which runs the storage's stale-trial callback).
    Otherwise a trial is stale when its worker (:data:`~.record.WORKER`) is a dead process of this
    host, or when its :data:`~.record.HEARTBEAT` is older than ``grace_period`` seconds. Each trial
    this call fails goes to ``retry``. Returns the numbers of the failed trials.
    """
    storage, study_id = study_storage(study)
    if has_native_heartbeat(storage):
        stale = stale_trial_ids(storage, study_id)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        return sorted(storage.get_trial(tid).number for tid in stale)
    now = time.time()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reason = _is_stale(trial, grace_period, now)
        if reason is None:
            continue
        try:
            if not storage.set_trial_state_values(trial_id_of(trial), state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first
        log.warning("trial %d is stale (%s): marked FAIL", trial.number, reason)
        failed.append(trial.number)
        if retry is not None:
            retry(study, storage.get_trial(trial_id_of(trial)))
    return failed
