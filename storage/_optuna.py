"""The one door to Optuna's and optuna-dashboard's private names.

diswot needs a few things Optuna keeps private: a study's storage and id, a trial's id, whether a
study is inside ``optimize``, the frozen copy a running trial caches, a finished trial's attributes
written after the fact (``distill``), whether Optuna's heartbeat runs, the RDB and journal storages'
internals that batch a trial's writes in one round trip (:mod:`._batch`), the journal file's lock,
and optuna-dashboard's note layout (a trial's first note in one write). Every such use is a function here, and ``tests/storage/test_optuna_door.py`` checks each
against the installed releases, so an Optuna release that changes one fails there, loudly.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import FrozenTrial

from ._errors import StorageError

__all__ = [
    "batches_journal",
    "batches_rdb_attrs",
    "batches_rdb_params",
    "cached_distributions",
    "cached_frozen_trial",
    "dashboard_note_attrs",
    "finished_trial_writes",
    "heartbeat_enabled",
    "in_optimize_loop",
    "journal_append",
    "journal_file_backend",
    "journal_locked",
    "journal_operation",
    "journal_trial",
    "rdb_models",
    "rdb_set_trial_param",
    "rdb_set_trial_user_attr",
    "rdb_transaction",
    "set_trial_user_attrs",
    "stale_trial_ids",
    "study_storage",
    "trial_id_of",
    "trial_storage",
    "uncached",
]


def study_storage(study: optuna.Study) -> tuple[BaseStorage, int]:
    """The storage that holds ``study`` and the study's id in it."""
    return study._storage, study._study_id


def trial_storage(trial: optuna.Trial) -> tuple[BaseStorage, int, int]:
    """The storage of a running trial, its study's id and the trial's id."""
    return trial.study._storage, trial.study._study_id, trial._trial_id


def cached_frozen_trial(trial: optuna.Trial) -> FrozenTrial:
    """The running trial as it stands (params, user and system attributes), without a storage read
    where Optuna caches it."""
    cached: FrozenTrial | None = getattr(trial, "_cached_frozen_trial", None)
    if cached is not None:
        return cached
    storage, _, trial_id = trial_storage(trial)
    return storage.get_trial(trial_id)


def in_optimize_loop(study: optuna.Study) -> bool:
    """Whether ``study.optimize`` is running in this thread (so that ``study.stop()`` is allowed)."""
    return bool(getattr(study._thread_local, "in_optimize_loop", False))


def stale_trial_ids(storage: BaseStorage, study_id: int) -> list[int]:
    """The RUNNING trials of an RDB storage with a heartbeat whose heartbeat stopped (Optuna's own check)."""
    ids: list[int] = storage._get_stale_trial_ids(study_id)  # type: ignore[attr-defined]
    return ids


@contextlib.contextmanager
def finished_trial_writes(storage: BaseStorage) -> Iterator[BaseStorage]:
    """Let ``storage`` update a finished trial's attributes while the block runs.

    Optuna refuses writes to finished trials; a distillation's results belong to the trial that
    searched its student, so for an RDB storage the check is lifted on this one storage object.
    """
    if not isinstance(storage, RDBStorage):
        raise StorageError(
            f"storage {type(storage).__name__} cannot update a finished trial; "
            "use an RDB storage (sqlite/postgresql/mysql)"
        )
    storage.check_trial_is_updatable = lambda trial_id, trial_state: None  # type: ignore[method-assign]
    try:
        yield storage
    finally:
        del storage.check_trial_is_updatable


def set_trial_user_attrs(storage: BaseStorage, trial: FrozenTrial, attrs: Mapping[str, Any]) -> None:
    """Set ``attrs`` on ``trial`` (a finished one inside :func:`finished_trial_writes`)."""
    for key, value in attrs.items():
        storage.set_trial_user_attr(trial._trial_id, key, value)


def dashboard_note_attrs(trial_id: int, body: str) -> dict[str, Any] | None:
    """The study system attributes of a trial's first note in optuna-dashboard's format (version 1
    and its chunks), to write in one round trip; ``None`` when optuna-dashboard's layout differs.

    :func:`optuna_dashboard.save_note` reads every study system attribute (all notes) twice per
    call, which grows with the study; a new trial has no note yet, so version 1 and its chunks can
    be written directly (``optuna_dashboard.get_note`` reads them back: a test checks it).
    """
    try:
        from optuna_dashboard._note import note_ver_key, split_body
    except ImportError:
        return None
    return {note_ver_key(trial_id): 1, **split_body(body, trial_id)}


# --------------------------------------------------------------------------- trials and heartbeats


def trial_id_of(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of a running or frozen trial."""
    return int(trial._trial_id)


def heartbeat_enabled(storage: BaseStorage) -> bool:
    """Whether ``storage`` runs Optuna's own heartbeat (an RDB storage with ``heartbeat_interval``)."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return bool(is_heartbeat_enabled(storage))


# --------------------------------------------------------------------------- batched writes: RDB


def uncached(storage: BaseStorage) -> tuple[BaseStorage, Any]:
    """The storage behind Optuna's RDB cache and the cache (None without one): ``_CachedStorage``
    holds no running-trial attributes."""
    from optuna.storages._cached_storage import _CachedStorage

    if isinstance(storage, _CachedStorage):
        return storage._backend, storage
    return storage, None


def batches_rdb_attrs(storage: BaseStorage) -> bool:
    """Whether ``storage`` is an RDB storage with Optuna's attribute write without commit."""
    return isinstance(storage, RDBStorage) and hasattr(storage, "_set_trial_attr_without_commit")


def batches_rdb_params(storage: BaseStorage) -> bool:
    """Whether ``storage`` is an RDB storage with Optuna's param write without commit."""
    return isinstance(storage, RDBStorage) and hasattr(storage, "_set_trial_param_without_commit")


def rdb_models() -> Any:
    """Optuna's SQLAlchemy models (``TrialModel``, ``TrialUserAttributeModel``, ...)."""
    from optuna.storages._rdb import models

    return models


@contextlib.contextmanager
def rdb_transaction(storage: Any) -> Iterator[Any]:
    """One session of ``storage``, committed when the block ends (rolled back if it raises)."""
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session, True) as session:
        yield session


def rdb_set_trial_user_attr(storage: Any, session: Any, trial_id: int, key: str, value: Any) -> None:
    """Optuna's own statement for one trial user attribute, in ``session`` (not committed)."""
    models = rdb_models()
    storage._set_trial_attr_without_commit(session, models.TrialUserAttributeModel, trial_id, key, value)


def rdb_set_trial_param(storage: Any, session: Any, trial_id: int, param: tuple[str, float, Any], known: Any) -> None:
    """Optuna's own statements for one param (name, internal value, distribution), in ``session``;
    ``known``: the study's distribution of that name, if any."""
    name, value, distribution = param
    storage._set_trial_param_without_commit(session, trial_id, name, value, distribution, known)


@contextlib.contextmanager
def cached_distributions(cache: Any, trial_id: int) -> Iterator[dict[str, Any]]:
    """The param distributions the cache knows for the trial's study, under the cache's lock
    (empty and unlocked without a cache); the caller adds the ones it writes."""
    if cache is None:
        yield {}
        return
    with cache._lock:
        study_id, _ = cache._trial_id_to_study_id_and_number[trial_id]
        yield cache._studies[study_id].param_distribution


# --------------------------------------------------------------------------- batched writes: journal


def batches_journal(storage: BaseStorage) -> bool:
    """Whether ``storage`` is a journal storage with the replay state and lock the batched writes use."""
    from optuna.storages import JournalStorage

    return (
        isinstance(storage, JournalStorage) and hasattr(storage, "_replay_result") and hasattr(storage, "_thread_lock")
    )


def journal_operation(name: str) -> int:
    """The journal's op code ``name`` (``SET_TRIAL_USER_ATTR``, ``SET_STUDY_SYSTEM_ATTR``, ``SET_TRIAL_PARAM``)."""
    from optuna.storages.journal._storage import JournalOperation

    return int(JournalOperation[name])


@contextlib.contextmanager
def journal_locked(storage: Any, *, sync: bool = False) -> Iterator[int]:
    """The journal storage's lock held (its state synced with the file with ``sync``); yields this worker's id."""
    with storage._thread_lock:
        if sync:
            storage._sync_with_backend()
        yield storage._replay_result.worker_id


def journal_trial(storage: Any, trial_id: int) -> FrozenTrial:
    """A trial as the journal storage has replayed it (KeyError for an unknown trial, as Optuna's)."""
    trial: FrozenTrial = storage._replay_result.get_trial(trial_id)
    return trial


def journal_append(storage: Any, logs: list[dict[str, Any]]) -> None:
    """Append ``logs`` to the journal in one write and replay them (under :func:`journal_locked`).

    Replaying stops at the first operation of ours that fails (a trial another worker has just
    finished); the rest is replayed too, so that no later read raises for them, and the first
    error is raised.
    """
    from optuna.exceptions import UpdateFinishedTrialError

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


def journal_file_backend(path: str, *, async_commit: bool) -> Any:
    """Optuna's journal file backend with the O_EXCL lock file (the lock that works on NFSv3+);
    ``async_commit``: appends written and closed under the lock but not fsync'ed."""
    import json

    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    lock = JournalFileOpenLock(path)
    if not async_commit:
        return JournalFileBackend(path, lock_obj=lock)
    try:
        from optuna.storages.journal._file import get_lock_file
    except ImportError:  # another Optuna layout: its own backend, which syncs every append
        return JournalFileBackend(path, lock_obj=lock)

    class _AsyncJournalFileBackend(JournalFileBackend):
        """Optuna's journal file whose appends are written and closed under the lock but not fsync'ed.

        Other processes (and NFS clients, by close-to-open consistency) read them at once; only a
        power loss or an OS crash can lose the last appends.
        """

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            with get_lock_file(self._lock):
                text = "\n".join(json.dumps(entry, separators=(",", ":")) for entry in logs) + "\n"
                with open(self._file_path, "ab") as f:
                    f.write(text.encode("utf-8"))

    return _AsyncJournalFileBackend(path, lock_obj=lock)
