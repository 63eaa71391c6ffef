"""The one door to Optuna's and optuna-dashboard's private names.

diswot needs a few things Optuna keeps private: a study's storage and id, a trial's id, whether a
study is inside ``optimize``, the frozen copy a running trial caches, a finished trial's attributes
written after the fact (``distill``), and optuna-dashboard's note layout (a trial's first note in
one write). Every such use is a function here, and ``tests/storage/test_optuna_door.py`` checks each
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
    "cached_frozen_trial",
    "dashboard_note_attrs",
    "finished_trial_writes",
    "in_optimize_loop",
    "set_trial_user_attrs",
    "stale_trial_ids",
    "study_storage",
    "trial_storage",
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
