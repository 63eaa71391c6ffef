"""Storage URLs and backends, heartbeats and resume, the study record (:mod:`.record`), and the one door to
Optuna's private names (``_optuna.py``)."""

from ._batch import deferred_params, deferred_user_attrs, write_attrs, write_params
from ._errors import ConfigMismatchError, StorageError
from ._heartbeat import (
    RetryStaleTrial,
    TrialHeartbeat,
    fail_stale_trials,
    has_native_heartbeat,
    mark_trial_worker,
    worker_identity,
    worker_is_dead,
)
from ._logging import MaskPasswordsFilter, install_log_masking, masked_logs, uninstall_log_masking
from ._metadata import config_diff, record_config
from ._optuna import (
    cached_frozen_trial,
    dashboard_note_attrs,
    finished_trial_writes,
    in_optimize_loop,
    set_trial_user_attrs,
    study_storage,
    trial_storage,
)
from ._url import (
    DEFAULT_STORAGE,
    STORAGE_ENV,
    StorageURL,
    default_artifact_dir,
    mask_url,
    open_storage,
    parse_storage_url,
    storage_url,
)

__all__ = [
    "set_trial_user_attrs",
    "trial_storage",
    "study_storage",
    "storage_url",
    "in_optimize_loop",
    "finished_trial_writes",
    "default_artifact_dir",
    "dashboard_note_attrs",
    "cached_frozen_trial",
    "ConfigMismatchError",
    "DEFAULT_STORAGE",
    "STORAGE_ENV",
    "MaskPasswordsFilter",
    "RetryStaleTrial",
    "StorageError",
    "StorageURL",
    "TrialHeartbeat",
    "config_diff",
    "deferred_params",
    "deferred_user_attrs",
    "fail_stale_trials",
    "has_native_heartbeat",
    "install_log_masking",
    "masked_logs",
    "uninstall_log_masking",
    "mark_trial_worker",
    "mask_url",
    "open_storage",
    "parse_storage_url",
    "record_config",
    "worker_identity",
    "worker_is_dead",
    "write_attrs",
    "write_params",
]
