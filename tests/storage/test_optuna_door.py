"""The one door to Optuna's private names (``storage/_optuna.py``, and the sampler modules that read a
study's trials): each private name the project uses exists in the
installed Optuna and optuna-dashboard and does what the project relies on, so a release that changes
one fails here, by name."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import RDBStorage

from diswot.storage import (
    StorageError,
    cached_frozen_trial,
    dashboard_note_attrs,
    finished_trial_writes,
    in_optimize_loop,
    open_storage,
    set_trial_user_attrs,
    study_storage,
    trial_storage,
)
from diswot.storage._optuna import stale_trial_ids

#: (module, attribute path) of every private Optuna or optuna-dashboard name the project reads
PRIVATE_NAMES = (
    ("optuna.study", "Study._storage"),
    ("optuna.study", "Study._study_id"),
    ("optuna.study", "Study._thread_local"),
    ("optuna.trial", "Trial._trial_id"),
    ("optuna.trial", "Trial._cached_frozen_trial"),
    ("optuna.trial", "FrozenTrial._trial_id"),
    ("optuna.storages._cached_storage", "_CachedStorage._backend"),
    ("optuna.storages._cached_storage", "_CachedStorage._studies"),
    ("optuna.storages._cached_storage", "_CachedStorage._trial_id_to_study_id_and_number"),
    ("optuna.storages._cached_storage", "_CachedStorage._lock"),
    ("optuna.storages._rdb.models", "TrialUserAttributeModel"),
    ("optuna.storages._rdb.models", "TrialModel.find_or_raise_by_id"),
    ("optuna.storages._rdb.models", "StudyModel.find_or_raise_by_id"),
    ("optuna.storages._rdb.models", "StudySystemAttributeModel.find_by_study_and_key"),
    ("optuna.storages._rdb.storage", "_create_scoped_session"),
    ("optuna.storages._rdb.storage", "RDBStorage._set_trial_attr_without_commit"),
    ("optuna.storages._rdb.storage", "RDBStorage._set_trial_param_without_commit"),
    ("optuna.storages._rdb.storage", "RDBStorage._get_stale_trial_ids"),
    ("optuna.storages._rdb.storage", "RDBStorage.check_trial_is_updatable"),
    ("optuna.storages._heartbeat", "is_heartbeat_enabled"),
    ("optuna.storages.journal._storage", "JournalOperation.SET_TRIAL_USER_ATTR"),
    ("optuna.storages.journal._storage", "JournalOperation.SET_STUDY_SYSTEM_ATTR"),
    ("optuna.storages.journal._storage", "JournalOperation.SET_TRIAL_PARAM"),
    ("optuna.storages.journal._storage", "JournalStorage._thread_lock"),
    ("optuna.storages.journal._storage", "JournalStorage._sync_with_backend"),
    ("optuna.storages.journal._storage", "JournalStorage._replay_result"),
    ("optuna.storages.journal._storage", "JournalStorage._backend"),
    ("optuna.storages.journal._file", "get_lock_file"),
    ("optuna.storages.journal._file", "JournalFileBackend._lock"),
    ("optuna.storages.journal._file", "JournalFileBackend._file_path"),
    ("optuna_dashboard._note", "note_ver_key"),
    ("optuna_dashboard._note", "split_body"),
)


def _instance_attr(cls: type, name: str) -> bool:
    """Whether ``cls`` (or an Optuna base class) sets ``self.<name>``: instance attributes are not on the class."""
    import inspect

    return any(f"self.{name}" in inspect.getsource(k) for k in cls.__mro__[:-1] if k.__module__.startswith("optuna"))


@pytest.mark.parametrize(("module", "path"), PRIVATE_NAMES, ids=[f"{m}:{p}" for m, p in PRIVATE_NAMES])
def test_private_name_exists(module: str, path: str) -> None:
    found = importlib.import_module(module)
    head, _, rest = path.partition(".")
    assert hasattr(found, head), f"{module} has no {head}: Optuna changed a name diswot uses"
    obj = getattr(found, head)
    if rest:
        parts = rest.split(".")
        for i, part in enumerate(parts):
            if hasattr(obj, part):
                obj = getattr(obj, part)
                continue
            assert i == len(parts) - 1 and isinstance(obj, type) and _instance_attr(obj, part), (
                f"{module}.{path}: Optuna changed a name diswot uses"
            )


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'door.db'}"


def test_study_and_trial_handles(tmp_path: Path) -> None:
    study = optuna.create_study(storage=_sqlite(tmp_path), study_name="door")
    storage, study_id = study_storage(study)
    assert storage.get_study_id_from_name("door") == study_id
    seen: dict[str, object] = {}

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        trial.set_user_attr("note", "kept")
        storage_, sid, tid = trial_storage(trial)
        seen.update(storage=storage_, study_id=sid, number=storage_.get_trial(tid).number, loop=in_optimize_loop(study))
        frozen = cached_frozen_trial(trial)
        seen.update(params=dict(frozen.params), user_attrs=dict(frozen.user_attrs))
        return x

    assert not in_optimize_loop(study)
    study.optimize(objective, n_trials=1)
    assert seen["study_id"] == study_id and seen["number"] == 0 and seen["loop"] is True
    assert "x" in seen["params"]  # type: ignore[operator]
    assert seen["user_attrs"] == {"note": "kept"}
    assert not in_optimize_loop(study)


def test_the_running_trial_is_cached(tmp_path: Path) -> None:
    """``cached_frozen_trial`` saves a storage read only while Optuna caches the running trial."""
    study = optuna.create_study(storage=_sqlite(tmp_path))
    trial = study.ask()
    trial.suggest_int("n", 1, 3)
    assert getattr(trial, "_cached_frozen_trial", None) is not None, "Optuna no longer caches the running trial"


def test_finished_trial_writes(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    study = optuna.create_study(storage=url, study_name="done")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    storage = open_storage(url, must_exist=True)
    trial = study.trials[0]
    with pytest.raises(RuntimeError):  # Optuna refuses writes to finished trials
        set_trial_user_attrs(storage, trial, {"late": 1})
    with finished_trial_writes(storage):
        set_trial_user_attrs(storage, trial, {"distill_top1": 0.5})
    assert optuna.load_study(study_name="done", storage=url).trials[0].user_attrs == {"distill_top1": 0.5}
    with pytest.raises(RuntimeError):  # the check is back after the block
        set_trial_user_attrs(storage, trial, {"late": 1})
    with pytest.raises(StorageError, match="cannot update a finished trial"):
        with finished_trial_writes(optuna.storages.InMemoryStorage()):
            pass


def test_stale_trial_ids(tmp_path: Path) -> None:
    storage = RDBStorage(_sqlite(tmp_path), heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    storage.record_heartbeat(trial._trial_id)
    time.sleep(2.2)
    assert stale_trial_ids(storage, study_storage(study)[1]) == [trial._trial_id]


def test_dashboard_note_attrs_are_read_back(tmp_path: Path) -> None:
    from optuna_dashboard import get_note

    study = optuna.create_study(storage=_sqlite(tmp_path))
    trial = study.ask()
    storage, study_id, trial_id = trial_storage(trial)
    attrs = dashboard_note_attrs(trial_id, "### ResNet[1,1,1]\n" + "x" * 5000)
    assert attrs is not None, "optuna-dashboard changed its note layout"
    for key, value in attrs.items():
        storage.set_study_system_attr(study_id, key, value)
    assert get_note(trial) == "### ResNet[1,1,1]\n" + "x" * 5000
