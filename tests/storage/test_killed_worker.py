"""A worker killed with SIGKILL mid-trial loses nothing (PostgreSQL, ``--heartbeat 2``).

Three ``diswot search`` workers share one study; one is killed while a trial runs. Optuna's
heartbeat makes the survivors fail its stale trial and re-queue it (RetryHeartbeatStaleTrialCallback),
and a survivor runs the copy with the same params.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
from optuna.trial import TrialState

from diswot.storage import open_storage, record

from .conftest import FAST_SEARCH, unique

#: survivors search this long, to outlive the kill by more than the grace period (4 s)
SURVIVOR_SECONDS = 20


def _worker(url: str, study: str, index: int, *extra: str) -> subprocess.Popen[str]:
    args = [
        *FAST_SEARCH,
        "--batch-size",
        "64",
        "--study",
        study,
        "--heartbeat",
        "2",
        "--worker-index",
        str(index),
        *extra,
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "diswot.pipeline.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, DISWOT_STORAGE=url, OMP_NUM_THREADS="1"),
    )


def _running_trial_of(study: optuna.Study, pid: int) -> optuna.trial.FrozenTrial | None:
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.system_attrs.get(record.WORKER) or {}
        if worker.get("pid") == pid and "arch" in t.user_attrs:
            return t
    return None


def test_killed_worker_trial_is_retried(pg_url: str) -> None:
    name = unique("killed")
    storage = open_storage(pg_url)
    optuna.create_study(study_name=name, storage=storage, direction="maximize")  # no creation race
    survivors = [_worker(pg_url, name, i, "--n-trials", "500", "--timeout", str(SURVIVOR_SECONDS)) for i in (0, 1)]
    # the victim scores every student (no stored score reused), so its trial is still running when killed
    victim = _worker(pg_url, name, 2, "--n-trials", "500", "--rescore")
    study = optuna.load_study(study_name=name, storage=storage)
    deadline = time.monotonic() + 240
    killed = None
    while time.monotonic() < deadline and victim.poll() is None:
        killed = _running_trial_of(study, victim.pid)
        if killed is not None:
            break
        time.sleep(0.2)
    assert killed is not None, (
        f"the victim never ran a trial: {victim.communicate()[0] if victim.poll() is not None else ''}"
    )
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    outputs = [p.communicate(timeout=600)[0] for p in survivors]
    assert [p.returncode for p in survivors] == [0, 0], outputs

    trials = optuna.load_study(study_name=name, storage=open_storage(pg_url)).get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials))), "trial numbers are unique and contiguous"
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    by_number = {t.number: t for t in trials}
    dead = by_number[killed.number]
    assert dead.state == TrialState.FAIL
    copies = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(copies) == 1, "exactly one retried copy"
    (copy,) = copies
    assert copy.params == dead.params and copy.state == TrialState.COMPLETE
    assert copy.user_attrs["arch"] == dead.user_attrs["arch"]
    # nothing lost or duplicated: every other trial completed, each by one live worker
    assert [t.number for t in trials if t.state == TrialState.FAIL] == [killed.number]
    pids = {(t.system_attrs.get(record.WORKER) or {}).get("pid") for t in trials}
    assert pids <= {victim.pid, *(p.pid for p in survivors)}
    assert (copy.system_attrs[record.WORKER]["pid"]) in {p.pid for p in survivors}
    assert dead.system_attrs[record.WORKER]["pid"] == victim.pid
