"""Local worker processes of ``diswot search --workers N`` and their clean stop on Ctrl-C.

Worker 0 is the ``diswot search`` process itself; workers 1..N-1 are ``diswot search``
subprocesses with the same options, their own ``--worker-index`` (hence sampler seed) and share of
``--n-trials``. The storage URL reaches them through :data:`STORAGE_ENV`, never their command
line, so ``ps`` does not show its password.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import optuna

from diswot.storage import TrialHeartbeat, deferred_user_attrs, mark_trial_worker, mask_url, write_attrs

from . import _options
from .notes import new_note_attrs, trial_note, write_trial_note

__all__ = [
    "STORAGE_ENV",
    "Interrupts",
    "WorkerObjective",
    "local_workers",
    "sampler_seed",
    "sigterm_as_interrupt",
    "split_trials",
    "start_workers",
    "usable_cores",
    "wait_workers",
    "worker_argv",
]

log = logging.getLogger(__name__)

#: environment variable with the storage URL (the default of --storage; how workers get it)
STORAGE_ENV = _options.STORAGE_ENV
#: options a worker subprocess gets from its parent's values, not copied
_WORKER_OWN = {"help", "storage", "workers", "worker_index", "n_trials", "no_progress", "top", "child"}


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity: ``taskset``, a container's cpuset)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def local_workers(requested: int, device: str) -> int:
    """The worker processes ``--workers requested`` runs on this host: on a GPU all of them (one
    worker's forward passes run while another does its bookkeeping); on the CPU at most one per
    core, since more only time-share the cores and finish later (BENCHMARKS.md, "Many workers")."""
    if device == "cpu" or device == "auto":
        import torch

        if device == "cpu" or not torch.cuda.is_available():
            return max(1, min(requested, usable_cores()))
    return requested


def split_trials(n_trials: int, workers: int) -> list[int]:
    """``n_trials`` split as evenly as possible between at most ``workers`` workers (none get 0)."""
    workers = max(1, min(workers, n_trials))
    return [n_trials // workers + (i < n_trials % workers) for i in range(workers)]


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
        if study is not None and getattr(study._thread_local, "in_optimize_loop", False):
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
        storage = trial.study._storage
        mark_trial_worker(storage, trial._trial_id, self.identity)
        beat = (
            TrialHeartbeat(storage=storage, trial_id=trial._trial_id, interval=self.heartbeat)
            if self.heartbeat
            else contextlib.nullcontext()
        )
        self.interrupts.in_objective = True
        # the arch is written at once (the dashboard shows what a running trial scores, and a killed
        # worker's trial keeps it); the other user attributes and the note go in one write at the end
        with deferred_user_attrs(trial, eager=("arch",)) as pending:
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
        note_attrs = None
        if note:
            # the trial as it stands: params, user attributes, and the system attributes it was
            # created with (a retried trial's ``failed_trial``), without reading it back
            frozen = getattr(trial, "_cached_frozen_trial", None) or trial.study._storage.get_trial(trial._trial_id)
            note_attrs = new_note_attrs(trial._trial_id, trial_note(frozen, score=score))
        write_attrs(
            trial.study._storage,
            trial_id=trial._trial_id,
            user_attrs=user_attrs,
            study_id=trial.study._study_id,
            study_system_attrs=note_attrs,
        )
        if note and note_attrs is None:  # another optuna-dashboard layout
            write_trial_note(trial, score=score)

    def _record_quietly(self, trial: optuna.Trial, user_attrs: dict[str, Any], *, note: bool) -> None:
        """:meth:`_record` for a failing trial: a storage error is logged (the trial's own error is raised)."""
        try:
            self._record(trial, user_attrs, note=note)
        except Exception as exc:
            log.warning("could not record the attributes of trial %d: %s", trial.number, mask_url(str(exc))[:200])


def worker_argv(parser: argparse.ArgumentParser, args: argparse.Namespace, index: int, n_trials: int) -> list[str]:
    """The command line of worker ``index``: the options of ``args`` that differ from ``parser``'s
    defaults (never the storage URL: workers get it from :data:`STORAGE_ENV`), its index and share.
    """
    argv = [sys.executable, "-m", "diswot.pipeline.cli", *(["-v"] * args.verbose), "search"]
    for action in parser._actions:
        if not action.option_strings or action.dest in _WORKER_OWN:
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default or value is None:
            continue
        opt = action.option_strings[-1]
        if isinstance(action, argparse._StoreTrueAction):
            argv.append(opt)
        elif isinstance(action, argparse._AppendAction):
            for item in value:
                argv += [opt, str(item)]
        else:
            argv += [opt, str(value)]
    argv += ["--worker-index", str(index), "--n-trials", str(n_trials), "--no-progress", "--child"]
    return argv


def start_workers(
    parser: argparse.ArgumentParser, args: argparse.Namespace, shares: list[int], threads: int | None
) -> list[subprocess.Popen[bytes]]:
    """Start workers 1..N-1 (``shares[i]`` trials each) as ``diswot search`` subprocesses."""
    env = dict(os.environ, **{STORAGE_ENV: args.storage})
    if threads is not None:
        env.setdefault("OMP_NUM_THREADS", str(threads))
    return [subprocess.Popen(worker_argv(parser, args, i, n), env=env) for i, n in enumerate(shares) if i > 0]


def wait_workers(children: list[subprocess.Popen[bytes]], interrupts: Interrupts, *, interrupted: bool) -> list[int]:
    """Wait for the worker subprocesses; forward an interrupt to them.

    SIGTERM first: a worker in a trial fails it cleanly (its handler treats SIGTERM as Ctrl-C, and
    a repeat of a terminal's Ctrl-C is ignored once), a worker still starting just ends. Then, every
    30 s, SIGTERM again (which a worker obeys at once) and SIGKILL.
    """
    forwarded_at: float | None = None
    escalation = [signal.SIGTERM, signal.SIGTERM, signal.SIGKILL]
    while any(c.poll() is None for c in children):
        if (interrupted or interrupts.interrupted) and (forwarded_at is None or time.monotonic() - forwarded_at > 30):
            sig = escalation.pop(0) if escalation else signal.SIGKILL
            for c in children:
                if c.poll() is None:
                    c.send_signal(sig)
            forwarded_at = time.monotonic()
        time.sleep(0.2)
    return [c.returncode for c in children]


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def sigterm_as_interrupt() -> None:
    """Make SIGTERM (``docker stop``, Kubernetes) stop the process like Ctrl-C (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
