"""A trial's round trips to the storage: batched attribute writes, and a fixed number of writes per
trial of a real search, whatever the size of the study (counted, not timed)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages._cached_storage import _CachedStorage
from optuna.trial import TrialState
from optuna_dashboard._note import get_note_from_system_attrs

from diswot.storage import deferred_params, deferred_user_attrs, open_storage, write_attrs

from .conftest import FAST_SEARCH, unique


def count_round_trips(storage: BaseStorage) -> dict[str, int]:
    """Count ``storage``'s round trips as they happen: ``writes`` (an SQL transaction with an INSERT,
    UPDATE or DELETE; a journal append) and ``statements`` (every SQL statement; journal reads)."""
    from sqlalchemy import event

    counts = {"writes": 0, "statements": 0}
    backend = storage._backend if isinstance(storage, _CachedStorage) else storage
    if isinstance(backend, RDBStorage):
        dirty = [False]

        def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            counts["statements"] += 1
            if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
                dirty[0] = True

        def on_commit(conn: Any) -> None:
            counts["writes"] += dirty[0]
            dirty[0] = False

        def on_rollback(conn: Any) -> None:
            dirty[0] = False

        event.listen(backend.engine, "before_cursor_execute", on_statement)
        event.listen(backend.engine, "commit", on_commit)
        event.listen(backend.engine, "rollback", on_rollback)
    elif isinstance(backend, JournalStorage):
        journal = backend._backend
        append, read = journal.append_logs, journal.read_logs

        def append_logs(logs: list[dict[str, Any]]) -> None:
            counts["writes"] += 1
            append(logs)

        def read_logs(log_number_from: int) -> Any:
            counts["statements"] += 1
            return read(log_number_from)

        journal.append_logs = append_logs  # type: ignore[method-assign]
        journal.read_logs = read_logs  # type: ignore[method-assign]
    else:
        raise AssertionError(f"no counter for {type(backend).__name__}")
    return counts


@pytest.fixture(params=["sqlite", "journal", pytest.param("postgresql", marks=pytest.mark.integration)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    if request.param == "journal":
        return f"journal:///{tmp_path / 'study.log'}"
    return request.getfixturevalue("pg_url")


def test_write_attrs_is_one_round_trip_and_reads_back_as_one_by_one(url: str) -> None:
    storage = open_storage(url, async_commit=True)
    study = optuna.create_study(storage=storage, study_name=unique())
    batched, single = study.ask(), study.ask()
    attrs = {"arch": "ResNet[1,3,5]", "params": 12345, "score": -0.5, "terms": {"a": [1, 2]}}
    counts = count_round_trips(storage)
    write_attrs(
        storage,
        trial_id=batched._trial_id,
        user_attrs=attrs,
        study_id=study._study_id,
        study_system_attrs={"k1": "v1", "k2": [1, 2]},
    )
    assert counts["writes"] == 1
    for key, value in attrs.items():
        single.set_user_attr(key, value)
    fresh = optuna.load_study(study_name=study.study_name, storage=open_storage(url))
    trials = fresh.get_trials(deepcopy=False)
    assert trials[0].user_attrs == trials[1].user_attrs == attrs
    assert list(trials[0].user_attrs) == list(attrs)
    system = fresh._storage.get_study_system_attrs(fresh._study_id)
    assert system["k1"] == "v1" and system["k2"] == [1, 2]


def test_write_attrs_on_a_finished_trial_raises_once(url: str) -> None:
    storage = open_storage(url, async_commit=True)
    study = optuna.create_study(storage=storage, study_name=unique())
    trial = study.ask()
    study.tell(trial, 1.0)
    with pytest.raises(UpdateFinishedTrialError):
        write_attrs(storage, trial_id=trial._trial_id, user_attrs={"a": 1, "b": 2})
    # nothing is left behind that a later read would trip over
    assert storage.get_trial(trial._trial_id).user_attrs == {}
    assert len(study.get_trials()) == 1


def test_deferred_user_attrs_reach_the_storage_when_written(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", async_commit=True)
    study = optuna.create_study(storage=storage, study_name="d")
    trial = study.ask()
    with deferred_user_attrs(trial, eager=("now",)) as pending:
        trial.set_user_attr("now", 1)
        trial.set_user_attr("arch", "x")
        trial.suggest_int("depth", 1, 7)  # params still go to the storage at once
        assert trial.user_attrs == {"now": 1, "arch": "x"}
        assert storage.get_trial(trial._trial_id).user_attrs == {"now": 1}
        assert "depth" in storage.get_trial(trial._trial_id).params
        with pytest.raises(TypeError):
            trial.set_user_attr("bad", object())  # not JSON: refused when set, as by the storage
    assert trial.storage is study._storage
    write_attrs(storage, trial_id=trial._trial_id, user_attrs=pending)
    assert storage.get_trial(trial._trial_id).user_attrs == {"now": 1, "arch": "x"}


def test_deferred_params_are_one_round_trip_and_read_back_as_one_by_one(url: str) -> None:
    storage = open_storage(url, async_commit=True)
    study = optuna.create_study(storage=storage, study_name=unique())
    batched, single = study.ask(), study.ask()
    counts = count_round_trips(storage)
    with deferred_params(batched):
        values = [batched.suggest_int("depth", 1, 7), batched.suggest_categorical("op", ["a", "b"])]
        values.append(batched.suggest_float("lr", 1e-3, 1.0, log=True))
        assert list(batched.params) == ["depth", "op", "lr"], "the trial shows each param at once"
        assert counts["writes"] == 0
    assert counts["writes"] == 1
    assert batched.storage is study._storage
    single.suggest_int("depth", 1, 7)
    fresh = optuna.load_study(study_name=study.study_name, storage=open_storage(url))
    stored, other = fresh.get_trials(deepcopy=False)
    assert list(stored.params.values()) == values and list(stored.params) == ["depth", "op", "lr"]
    assert stored.distributions["lr"] == optuna.distributions.FloatDistribution(1e-3, 1.0, log=True)
    assert other.params["depth"] in range(1, 8)


def test_deferred_params_refuse_what_one_by_one_refuses(url: str) -> None:
    storage = open_storage(url, async_commit=True)
    study = optuna.create_study(storage=storage, study_name=unique())
    first = study.ask()
    first.suggest_int("depth", 1, 7)
    study.tell(first, 1.0)
    clash = study.ask()
    with pytest.raises(ValueError), deferred_params(clash):
        clash.suggest_categorical("depth", ["a", "b"])  # another distribution for the study's param
    study.tell(clash, state=TrialState.FAIL)
    done = study.ask()
    study.tell(done, 1.0)
    with pytest.raises(UpdateFinishedTrialError), deferred_params(done):
        done.suggest_int("width", 1, 3)
    fresh = optuna.load_study(study_name=study.study_name, storage=open_storage(url)).get_trials(deepcopy=False)
    assert [t.params for t in fresh] == [first.params, {}, {}]


def _prefill(study: optuna.Study, n: int) -> None:
    """Add ``n`` COMPLETE S0 trials (random depths and scores) to a study that has one."""
    template = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))[0]
    rng = random.Random(0)
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={
                    name: rng.choice(d.choices) if hasattr(d, "choices") else rng.randrange(d.low, d.high + 1, d.step)  # type: ignore[attr-defined]
                    for name, d in template.distributions.items()
                },
                distributions=template.distributions,
                value=-rng.random(),
                user_attrs=template.user_attrs,
            )
            for _ in range(n)
        ]
    )


@pytest.mark.parametrize(
    "url",
    # PostgreSQL's per-trial writes are the SQL path SQLite takes, and PostgreSQL's round trips are
    # counted by the tests above; its 500-trial search runs with -m slow
    ["sqlite", "journal", pytest.param("postgresql", marks=[pytest.mark.integration, pytest.mark.slow])],
    indirect=True,
)
def test_a_search_writes_the_same_per_trial_at_any_study_size(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes per trial of ``diswot search`` (S0, notes on) at study sizes 0-12 and 500-512."""
    from diswot.pipeline import notes, search, study
    from diswot.pipeline.cli import main

    marks: list[dict[str, int]] = []
    real_open, real_throttled = study.open_storage, search._throttled

    def counted_open(*args: Any, **kwargs: Any) -> BaseStorage:
        storage = real_open(*args, **kwargs)
        if kwargs.get("must_exist"):  # the study's record, read before the search opens its storage
            return storage
        live = count_round_trips(storage)
        marks.append(live)  # the live counter; per-trial snapshots follow it in the list
        return storage

    def marking(check: Any, seconds: float) -> Any:
        inner = real_throttled(check, seconds)

        def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            marks.append(dict(marks[0]))  # after each trial, before its callbacks touch the storage
            inner(study, trial)

        return callback

    monkeypatch.setattr(study, "open_storage", counted_open)
    monkeypatch.setattr(search, "_throttled", marking)
    # the study note (every 10 trials, spaced in time) and the stale-trial scan (every 30 s) are
    # time-driven: keep them out of the trials counted here
    monkeypatch.setattr(notes, "NOTE_MIN_SECONDS", 1e9)
    monkeypatch.setattr(search, "STALE_CHECK_SECONDS", 1e9)
    study_name = unique()
    search = [*FAST_SEARCH, "--storage", url, "--study", study_name, "--n-trials", "12"]

    def per_trial() -> tuple[list[int], list[int]]:
        assert main(search) == 0
        snaps = marks[1:]  # marks[0] is taken while the first trial runs
        assert len(snaps) == 12
        marks.clear()
        writes = [b["writes"] - a["writes"] for a, b in zip(snaps, snaps[1:])]
        statements = [b["statements"] - a["statements"] for a, b in zip(snaps, snaps[1:])]
        return writes, statements

    small_writes, small_reads = per_trial()
    study = optuna.load_study(study_name=study_name, storage=open_storage(url))
    _prefill(study, 500)
    large_writes, large_reads = per_trial()
    trials = optuna.load_study(study_name=study_name, storage=open_storage(url)).get_trials(deepcopy=False)
    assert len(trials) == 524 and all(t.state == TrialState.COMPLETE for t in trials)
    system = study._storage.get_study_system_attrs(study._study_id)
    assert get_note_from_system_attrs(system, trials[-1]._trial_id)["body"].startswith("### ResNet[")  # noted
    # S0: create, lineage, the 3 params, worker mark, arch, the other user attributes + note, tell
    assert set(small_writes) == set(large_writes) == {7}, (small_writes, large_writes)
    assert max(large_reads) <= max(small_reads), (small_reads, large_reads)


def test_async_commit_settings(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``async_commit`` sets per backend; another reader sees the writes at once."""
    import os

    storage = open_storage(url, async_commit=True)
    if url.startswith("journal"):
        monkeypatch.setattr(os, "fsync", lambda fd: pytest.fail("a search's journal append must not fsync"))
    study = optuna.create_study(storage=storage, study_name=unique())
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    monkeypatch.undo()
    assert len(optuna.load_study(study_name=study.study_name, storage=open_storage(url)).trials) == 2
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    elif url.startswith("postgresql"):
        with storage.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
        plain = open_storage(url)
        with plain.engine.connect() as conn:  # only a search's own connections
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
