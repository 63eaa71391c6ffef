"""Several attribute writes in one storage round trip.

Optuna's storage API writes one attribute per call, and each call is a commit: an SQL
transaction, or a locked append to a journal. :func:`write_attrs` writes a trial's user
attributes and the study's system attributes (optuna-dashboard's notes) together: in one
transaction on an RDB storage (one multi-row upsert per table on SQLite and PostgreSQL), in one locked append of the usual one-attribute journal
operations on a journal storage, and with the public calls, one by one, on any other storage.
What ends up in the storage is exactly what the one-by-one calls write, so Optuna and
optuna-dashboard read it as usual.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage

__all__ = ["deferred_params", "deferred_user_attrs", "write_attrs", "write_params"]


def _unwrap(storage: BaseStorage) -> BaseStorage:
    """The storage behind Optuna's RDB cache (``_CachedStorage`` holds no running-trial attributes)."""
    from optuna.storages._cached_storage import _CachedStorage

    return storage._backend if isinstance(storage, _CachedStorage) else storage


def _upsert(session: Any, dialect: str, model: Any, owner: str, owner_id: int, values: Mapping[str, Any]) -> None:
    """``values`` into ``model`` (rows ``owner``/key/value_json, unique on owner and key) in one statement."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = [{owner: owner_id, "key": key, "value_json": json.dumps(value)} for key, value in values.items()]
    statement = insert(model).values(rows)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[getattr(model, owner), model.key], set_={"value_json": statement.excluded.value_json}
        )
    )


def _write_rdb(
    storage: Any, trial_id: int, user_attrs: Mapping[str, Any], study_id: int | None, study_attrs: Mapping[str, Any]
) -> None:
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    dialect = storage.engine.name
    multi_row = dialect == "postgresql" or (dialect == "sqlite" and sqlite3.sqlite_version_info >= (3, 24, 0))
    with _create_scoped_session(storage.scoped_session, True) as session:
        if not multi_row:  # e.g. MySQL: Optuna's own statement per attribute, in one transaction
            for key, value in user_attrs.items():
                storage._set_trial_attr_without_commit(session, models.TrialUserAttributeModel, trial_id, key, value)
        elif user_attrs:
            trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
            storage.check_trial_is_updatable(trial_id, trial.state)
            _upsert(session, dialect, models.TrialUserAttributeModel, "trial_id", trial_id, user_attrs)
        if study_attrs and study_id is not None and multi_row:
            models.StudyModel.find_or_raise_by_id(study_id, session)
            _upsert(session, dialect, models.StudySystemAttributeModel, "study_id", study_id, study_attrs)
        elif study_attrs and study_id is not None:
            study = models.StudyModel.find_or_raise_by_id(study_id, session)
            for key, value in study_attrs.items():
                row = models.StudySystemAttributeModel.find_by_study_and_key(study, key, session)
                if row is None:
                    session.add(
                        models.StudySystemAttributeModel(study_id=study_id, key=key, value_json=json.dumps(value))
                    )
                else:
                    row.value_json = json.dumps(value)


def _write_journal(
    storage: Any, trial_id: int, user_attrs: Mapping[str, Any], study_id: int | None, study_attrs: Mapping[str, Any]
) -> None:
    from optuna.storages.journal._storage import JournalOperation

    with storage._thread_lock:
        storage._sync_with_backend()
        trial = storage._replay_result.get_trial(trial_id)  # KeyError for an unknown trial, as Optuna's
        if trial.state.is_finished():
            raise UpdateFinishedTrialError(f"trial #{trial.number} has already finished and cannot be updated")
        worker = storage._replay_result.worker_id
        logs = [
            {
                "op_code": JournalOperation.SET_TRIAL_USER_ATTR,
                "worker_id": worker,
                "trial_id": trial_id,
                "user_attr": {k: v},
            }
            for k, v in user_attrs.items()
        ]
        logs += [
            {
                "op_code": JournalOperation.SET_STUDY_SYSTEM_ATTR,
                "worker_id": worker,
                "study_id": study_id,
                "system_attr": {k: v},
            }
            for k, v in study_attrs.items()
        ]
        _append_and_replay(storage, logs)


def _append_and_replay(storage: Any, logs: list[dict[str, Any]]) -> None:
    """Append ``logs`` to the journal in one write and replay them (under the storage's lock).

    Replaying stops at the first operation of ours that fails (a trial another worker has just
    finished); the rest is replayed too, so that no later read raises for them, and the first
    error is raised.
    """
    storage._backend.append_logs(logs)
    error: Exception | None = None
    while True:
        try:
            storage._sync_with_backend()
            break
        except (UpdateFinishedTrialError, ValueError) as exc:
            error = error or exc
    if error is not None:
        raise error


def _batched(storage: BaseStorage) -> Any:
    """The one-round-trip writer for ``storage``'s kind, or None (use the public calls)."""
    from optuna.storages import JournalStorage, RDBStorage

    if isinstance(storage, RDBStorage) and hasattr(storage, "_set_trial_attr_without_commit"):
        return _write_rdb
    if isinstance(storage, JournalStorage) and hasattr(storage, "_replay_result") and hasattr(storage, "_thread_lock"):
        return _write_journal
    return None


def write_attrs(
    storage: BaseStorage,
    *,
    trial_id: int,
    user_attrs: Mapping[str, Any],
    study_id: int | None = None,
    study_system_attrs: Mapping[str, Any] | None = None,
) -> None:
    """Set ``user_attrs`` on the trial and ``study_system_attrs`` on the study in one round trip.

    Raises what :meth:`~optuna.storages.BaseStorage.set_trial_user_attr` raises (e.g.
    ``UpdateFinishedTrialError`` for a finished trial); on an RDB storage nothing is written then.
    """
    study_attrs = dict(study_system_attrs or {})
    if study_attrs and study_id is None:
        raise ValueError("study_system_attrs need the study_id")
    if not user_attrs and not study_attrs:
        return
    backend = _unwrap(storage)
    writer = _batched(backend)
    if writer is not None:
        writer(backend, trial_id, user_attrs, study_id, study_attrs)
        return
    for key, value in user_attrs.items():
        storage.set_trial_user_attr(trial_id, key, value)
    for key, value in study_attrs.items():
        storage.set_study_system_attr(study_id, key, value)  # type: ignore[arg-type]


class _DeferringStorage:
    """``trial.storage`` while user attributes are deferred: keeps the trial's, passes the rest on."""

    def __init__(self, storage: BaseStorage, trial_id: int, pending: dict[str, Any], eager: frozenset[str]) -> None:
        self._storage = storage
        self._trial_id = trial_id
        self._pending = pending
        self._eager = eager

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        if trial_id != self._trial_id or key in self._eager:
            self._storage.set_trial_user_attr(trial_id, key, value)
            return
        json.dumps(value)  # as the storage would: a value that is not JSON fails here, not later
        self._pending[key] = value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)


@contextmanager
def deferred_user_attrs(trial: optuna.Trial, *, eager: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
    """Keep the user attributes ``trial.set_user_attr`` sets inside the block, for one :func:`write_attrs`.

    ``trial.user_attrs`` shows them at once; the storage gets them when the caller writes the
    yielded dict (keys in the order they were set). The ``eager`` keys, and everything else the
    trial does (params, system attributes), go to the storage at once, as usual.
    """
    pending: dict[str, Any] = {}
    storage = trial.storage
    trial.storage = _DeferringStorage(storage, trial._trial_id, pending, frozenset(eager))  # type: ignore[assignment]
    try:
        yield pending
    finally:
        trial.storage = storage


#: a trial's param as Optuna's storage API takes it: name, internal value, distribution
Param = tuple[str, float, BaseDistribution]


def _params_rdb(cache: Any, storage: Any, trial_id: int, params: list[Param]) -> None:
    """Optuna's own per-param statements, in one transaction (checked against the study's
    distributions as :meth:`set_trial_param` checks them, through the cache where there is one)."""
    from optuna.storages._rdb.storage import _create_scoped_session

    known: dict[str, BaseDistribution] = {}
    if cache is not None:
        study_id, _ = cache._trial_id_to_study_id_and_number[trial_id]
        known = cache._studies[study_id].param_distribution
    with _create_scoped_session(storage.scoped_session, True) as session:
        for name, value, distribution in params:
            storage._set_trial_param_without_commit(session, trial_id, name, value, distribution, known.get(name))
    for name, _, distribution in params:
        known.setdefault(name, distribution)


def _params_journal(storage: Any, trial_id: int, params: list[Param]) -> None:
    """The usual one-param journal operations, in one locked append."""
    from optuna.distributions import distribution_to_json
    from optuna.storages.journal._storage import JournalOperation

    with storage._thread_lock:
        worker = storage._replay_result.worker_id
        logs = [
            {
                "op_code": JournalOperation.SET_TRIAL_PARAM,
                "worker_id": worker,
                "trial_id": trial_id,
                "param_name": name,
                "param_value_internal": value,
                "distribution": distribution_to_json(distribution),
            }
            for name, value, distribution in params
        ]
        _append_and_replay(storage, logs)


def write_params(storage: BaseStorage, trial_id: int, params: list[Param]) -> None:
    """Set the trial's ``params`` (name, internal value, distribution) in one round trip.

    One transaction on an RDB storage, one locked append on a journal storage, the public calls
    one by one elsewhere; what is stored, and what is refused (a finished trial, a distribution
    the study already holds differently), is what :meth:`set_trial_param` stores and refuses.
    """
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages._cached_storage import _CachedStorage

    if not params:
        return
    backend = _unwrap(storage)
    cache = storage if isinstance(storage, _CachedStorage) else None
    if isinstance(backend, RDBStorage) and hasattr(backend, "_set_trial_param_without_commit"):
        if cache is None:
            _params_rdb(None, backend, trial_id, params)
        else:
            with cache._lock:
                _params_rdb(cache, backend, trial_id, params)
    elif (
        isinstance(backend, JournalStorage)
        and hasattr(backend, "_replay_result")
        and hasattr(backend, "_thread_lock")
        and len(params) > 1
    ):
        _params_journal(backend, trial_id, params)
    else:
        for name, value, distribution in params:
            storage.set_trial_param(trial_id, name, value, distribution)


class _ParamBuffer:
    """``trial.storage`` while params are deferred: keeps the trial's, passes the rest on."""

    def __init__(self, storage: Any, trial_id: int, pending: list[Param]) -> None:
        self._storage = storage
        self._trial_id = trial_id
        self._pending = pending

    def set_trial_param(self, trial_id: int, name: str, value: float, distribution: BaseDistribution) -> None:
        if trial_id != self._trial_id:
            self._storage.set_trial_param(trial_id, name, value, distribution)
        else:
            self._pending.append((name, value, distribution))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)


@contextmanager
def deferred_params(trial: optuna.Trial) -> Iterator[None]:
    """Write the params the trial suggests inside the block in one round trip, when it ends.

    ``trial.params`` shows each at once; the storage gets them together (:func:`write_params`),
    also when the block raises, so a suggestion that fails half-way keeps what it suggested.
    """
    pending: list[Param] = []
    storage = trial.storage
    trial.storage = _ParamBuffer(storage, trial._trial_id, pending)  # type: ignore[assignment]
    try:
        yield
    finally:
        trial.storage = storage
        write_params(trial.study._storage, trial._trial_id, pending)
