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

from ._optuna import (
    batches_journal,
    batches_rdb_attrs,
    batches_rdb_params,
    cached_distributions,
    journal_append,
    journal_locked,
    journal_operation,
    journal_trial,
    rdb_models,
    rdb_set_trial_param,
    rdb_set_trial_user_attr,
    rdb_transaction,
    study_storage,
    trial_id_of,
    uncached,
)

__all__ = ["deferred_params", "deferred_user_attrs", "write_attrs", "write_params"]


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
    models = rdb_models()
    dialect = storage.engine.name
    multi_row = dialect == "postgresql" or (dialect == "sqlite" and sqlite3.sqlite_version_info >= (3, 24, 0))
    with rdb_transaction(storage) as session:
        if not multi_row:  # e.g. MySQL: Optuna's own statement per attribute, in one transaction
            for key, value in user_attrs.items():
                rdb_set_trial_user_attr(storage, session, trial_id, key, value)
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
    with journal_locked(storage, sync=True) as worker:
        trial = journal_trial(storage, trial_id)
        if trial.state.is_finished():
            raise UpdateFinishedTrialError(f"trial #{trial.number} has already finished and cannot be updated")
        logs = [
            {
                "op_code": journal_operation("SET_TRIAL_USER_ATTR"),
                "worker_id": worker,
                "trial_id": trial_id,
                "user_attr": {k: v},
            }
            for k, v in user_attrs.items()
        ]
        logs += [
            {
                "op_code": journal_operation("SET_STUDY_SYSTEM_ATTR"),
                "worker_id": worker,
                "study_id": study_id,
                "system_attr": {k: v},
            }
            for k, v in study_attrs.items()
        ]
        journal_append(storage, logs)


def _batched(storage: BaseStorage) -> Any:
    """The one-round-trip writer for ``storage``'s kind, or None (use the public calls)."""
    if batches_rdb_attrs(storage):
        return _write_rdb
    if batches_journal(storage):
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
    backend, _ = uncached(storage)
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
        self._inner = storage
        self._owner = trial_id
        self._pending = pending
        self._eager = eager

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        if trial_id != self._owner or key in self._eager:
            self._inner.set_trial_user_attr(trial_id, key, value)
            return
        json.dumps(value)  # as the storage would: a value that is not JSON fails here, not later
        self._pending[key] = value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextmanager
def deferred_user_attrs(trial: optuna.Trial, *, eager: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
    """Keep the user attributes ``trial.set_user_attr`` sets inside the block, for one :func:`write_attrs`.

    ``trial.user_attrs`` shows them at once; the storage gets them when the caller writes the
    yielded dict (keys in the order they were set). The ``eager`` keys, and everything else the
    trial does (params, system attributes), go to the storage at once, as usual.
    """
    pending: dict[str, Any] = {}
    storage = trial.storage
    trial.storage = _DeferringStorage(storage, trial_id_of(trial), pending, frozenset(eager))  # type: ignore[assignment]
    try:
        yield pending
    finally:
        trial.storage = storage


#: a trial's param as Optuna's storage API takes it: name, internal value, distribution
Param = tuple[str, float, BaseDistribution]


def _params_rdb(cache: Any, storage: Any, trial_id: int, params: list[Param]) -> None:
    """Optuna's own per-param statements, in one transaction (checked against the study's
    distributions as :meth:`set_trial_param` checks them, through the cache where there is one)."""
    with cached_distributions(cache, trial_id) as known:
        with rdb_transaction(storage) as session:
            for param in params:
                rdb_set_trial_param(storage, session, trial_id, param, known.get(param[0]))
        for name, _, distribution in params:
            known.setdefault(name, distribution)


def _params_journal(storage: Any, trial_id: int, params: list[Param]) -> None:
    """The usual one-param journal operations, in one locked append."""
    from optuna.distributions import distribution_to_json

    with journal_locked(storage) as worker:
        logs = [
            {
                "op_code": journal_operation("SET_TRIAL_PARAM"),
                "worker_id": worker,
                "trial_id": trial_id,
                "param_name": name,
                "param_value_internal": value,
                "distribution": distribution_to_json(distribution),
            }
            for name, value, distribution in params
        ]
        journal_append(storage, logs)


def write_params(storage: BaseStorage, trial_id: int, params: list[Param]) -> None:
    """Set the trial's ``params`` (name, internal value, distribution) in one round trip.

    One transaction on an RDB storage, one locked append on a journal storage, the public calls
    one by one elsewhere; what is stored, and what is refused (a finished trial, a distribution
    the study already holds differently), is what :meth:`set_trial_param` stores and refuses.
    """
    if not params:
        return
    backend, cache = uncached(storage)
    if batches_rdb_params(backend):
        _params_rdb(cache, backend, trial_id, params)
    elif batches_journal(backend) and len(params) > 1:
        _params_journal(backend, trial_id, params)
    else:
        for name, value, distribution in params:
            storage.set_trial_param(trial_id, name, value, distribution)


class _ParamBuffer:
    """``trial.storage`` while params are deferred: keeps the trial's, passes the rest on."""

    def __init__(self, storage: Any, trial_id: int, pending: list[Param]) -> None:
        self._inner = storage
        self._owner = trial_id
        self._pending = pending

    def set_trial_param(self, trial_id: int, name: str, value: float, distribution: BaseDistribution) -> None:
        if trial_id != self._owner:
            self._inner.set_trial_param(trial_id, name, value, distribution)
        else:
            self._pending.append((name, value, distribution))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@contextmanager
def deferred_params(trial: optuna.Trial) -> Iterator[None]:
    """Write the params the trial suggests inside the block in one round trip, when it ends.

    ``trial.params`` shows each at once; the storage gets them together (:func:`write_params`),
    also when the block raises, so a suggestion that fails half-way keeps what it suggested.
    """
    pending: list[Param] = []
    storage = trial.storage
    trial.storage = _ParamBuffer(storage, trial_id_of(trial), pending)  # type: ignore[assignment]
    try:
        yield
    finally:
        trial.storage = storage
        write_params(study_storage(trial.study)[0], trial_id_of(trial), pending)
