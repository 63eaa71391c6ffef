"""Stale RUNNING trials: detection (dead local worker, silent heartbeat, Optuna's native
heartbeat), retry with the same params, and the sampler not being asked for them again."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from diswot.samplers import EvolutionSampler
from diswot.storage import (
    RetryStaleTrial,
    TrialHeartbeat,
    fail_stale_trials,
    open_storage,
    record,
    worker_identity,
    worker_is_dead,
)


def space(trial: optuna.trial.BaseTrial) -> None:
    """S0's three stage depths."""
    for i in (1, 2, 3):
        trial.suggest_int(f"stage{i}.depth", 1, 7, step=2)


def objective(trial: optuna.Trial) -> float:
    space(trial)
    return float(sum(trial.params.values()))


class SpySampler(EvolutionSampler):
    """Records every (trial number, param) it is asked to sample."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(suggest_func=space, seed=0, population_size=4, tournament_size=2, **kwargs)
        self.asked: list[tuple[int, str]] = []

    def sample_independent(self, study, trial, param_name, param_distribution):  # type: ignore[no-untyped-def]
        self.asked.append((trial.number, param_name))
        return super().sample_independent(study, trial, param_name, param_distribution)


def dead_identity() -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    return {**worker_identity(), "pid": int(proc.stdout), "start": None}


def running_trial(study: optuna.Study, **attrs: Any) -> optuna.Trial:
    trial = study.ask()
    space(trial)
    for key, value in attrs.items():
        study._storage.set_trial_system_attr(trial._trial_id, key, value)
    return trial


@pytest.fixture()
def journal_study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(
        storage=open_storage(f"journal://{tmp_path / 's.log'}"), direction="maximize", sampler=SpySampler()
    )


@pytest.mark.integration
def test_worker_is_dead() -> None:
    me = worker_identity()
    assert not worker_is_dead(me)
    assert worker_is_dead(dead_identity())
    assert not worker_is_dead({**dead_identity(), "host": "another-host"}), "other hosts are judged by heartbeat"
    assert not worker_is_dead({**dead_identity(), "pidns": -1}), "other containers are judged by heartbeat"
    assert worker_is_dead({**me, "start": (me["start"] or 0) + 1}) == (me["start"] is not None), "a reused pid"
    assert not worker_is_dead(None) and not worker_is_dead({"pid": "x"})


@pytest.mark.integration
def test_dead_worker_trial_is_failed_and_retried_with_same_params(journal_study: optuna.Study) -> None:
    study = journal_study
    sampler: SpySampler = study.sampler  # type: ignore[assignment]
    dead = running_trial(study, **{record.WORKER: dead_identity()})
    alive = running_trial(study, **{record.WORKER: worker_identity()})
    unknown = running_trial(study)
    assert fail_stale_trials(study, retry=RetryStaleTrial()) == [dead.number]
    trials = study.get_trials(deepcopy=False)
    assert trials[dead.number].state == TrialState.FAIL
    assert trials[alive.number].state == TrialState.RUNNING and trials[unknown.number].state == TrialState.RUNNING
    (copy,) = [t for t in trials if t.state == TrialState.WAITING]
    assert copy.params == trials[dead.number].params
    assert copy.system_attrs["failed_trial"] == dead.number and copy.system_attrs["retry_history"] == [dead.number]
    assert record.WORKER not in copy.system_attrs, "the dead worker's identity is not copied"

    sampler.asked.clear()
    study.optimize(objective, n_trials=1)  # pops the WAITING copy first
    done = study.trials[copy.number]
    assert done.state == TrialState.COMPLETE and done.params == copy.params
    assert not [a for a in sampler.asked if a[0] == copy.number], (
        "the sampler is not asked for a retried trial's params"
    )


def test_enqueued_fixed_params_are_not_sampled(journal_study: optuna.Study) -> None:
    study = journal_study
    sampler: SpySampler = study.sampler  # type: ignore[assignment]
    study.enqueue_trial({"stage1.depth": 7, "stage2.depth": 1, "stage3.depth": 3})
    study.optimize(objective, n_trials=1)
    assert study.trials[0].params == {"stage1.depth": 7, "stage2.depth": 1, "stage3.depth": 3}
    assert sampler.asked == []
    study.enqueue_trial({"stage1.depth": 5})  # partly fixed: only the others are sampled
    study.optimize(objective, n_trials=1)
    assert study.trials[1].params["stage1.depth"] == 5
    assert sorted(name for _, name in sampler.asked) == ["stage2.depth", "stage3.depth"]


def test_silent_heartbeat_is_stale(journal_study: optuna.Study) -> None:
    study = journal_study
    far = {**worker_identity(), "host": "another-host"}
    old = running_trial(study, **{record.WORKER: far, record.HEARTBEAT: time.time() - 60})
    fresh = running_trial(study, **{record.WORKER: far, record.HEARTBEAT: time.time()})
    assert fail_stale_trials(study, grace_period=None) == [], "without a grace period only dead local workers count"
    assert fail_stale_trials(study, grace_period=10, retry=RetryStaleTrial()) == [old.number]
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states[old.number] == TrialState.FAIL and states[fresh.number] == TrialState.RUNNING
    assert record.HEARTBEAT not in study.get_trials(states=(TrialState.WAITING,))[0].system_attrs


def test_trial_heartbeat_thread(journal_study: optuna.Study) -> None:
    study = journal_study
    trial = running_trial(study)
    with TrialHeartbeat(storage=study._storage, trial_id=trial._trial_id, interval=0.1):
        first = study._storage.get_trial(trial._trial_id).system_attrs[record.HEARTBEAT]
        time.sleep(0.45)
        later = study._storage.get_trial(trial._trial_id).system_attrs[record.HEARTBEAT]
    assert later > first
    with pytest.raises(ValueError, match="interval"):
        TrialHeartbeat(storage=study._storage, trial_id=trial._trial_id, interval=0)


@pytest.mark.integration
def test_retry_limit(journal_study: optuna.Study) -> None:
    study = journal_study
    retry = RetryStaleTrial(max_retry=1)
    running_trial(study, **{record.WORKER: dead_identity()})
    fail_stale_trials(study, retry=retry)
    (copy,) = study.get_trials(states=(TrialState.WAITING,))
    trial = study.ask()  # pops the copy
    assert trial.number == copy.number
    study._storage.set_trial_system_attr(trial._trial_id, record.WORKER, dead_identity())
    fail_stale_trials(study, retry=retry)
    assert study.get_trials(states=(TrialState.WAITING,)) == [], "no second retry with max_retry=1"
    with pytest.raises(ValueError, match="max_retry"):
        RetryStaleTrial(max_retry=-1)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_native_rdb_heartbeat_retries(tmp_path: Path) -> None:
    retry = RetryStaleTrial()
    storage = open_storage(
        f"sqlite:///{tmp_path / 'h.db'}", heartbeat_interval=1, grace_period=1, stale_trial_callback=retry
    )
    study = optuna.create_study(storage=storage, direction="maximize")
    trial = running_trial(study)
    study._storage.record_heartbeat(trial._trial_id)
    time.sleep(2.2)
    assert fail_stale_trials(study) == [trial.number]
    (copy,) = study.get_trials(states=(TrialState.WAITING,))
    assert copy.params == study.trials[trial.number].params and copy.system_attrs["failed_trial"] == trial.number
