"""Storage URLs and backends, heartbeats and resume, study metadata."""

from ._batch import deferred_params, deferred_user_attrs, write_attrs, write_params
from ._errors import ConfigMismatchError, StorageError
from ._heartbeat import (
    HEARTBEAT_KEY,
    WORKER_KEY,
    RetryStaleTrial,
    TrialHeartbeat,
    fail_stale_trials,
    has_native_heartbeat,
    mark_trial_worker,
    worker_identity,
    worker_is_dead,
)
from ._logging import MaskPasswordsFilter, install_log_masking, uninstall_log_masking
from ._metadata import CHANGES_ATTR, CONFIG_ATTR, config_diff, record_config
from ._url import DEFAULT_STORAGE, StorageURL, mask_url, open_storage, parse_storage_url

__all__ = [
    "CHANGES_ATTR",
    "CONFIG_ATTR",
    "ConfigMismatchError",
    "DEFAULT_STORAGE",
    "HEARTBEAT_KEY",
    "MaskPasswordsFilter",
    "RetryStaleTrial",
    "StorageError",
    "StorageURL",
    "TrialHeartbeat",
    "WORKER_KEY",
    "config_diff",
    "deferred_params",
    "deferred_user_attrs",
    "fail_stale_trials",
    "has_native_heartbeat",
    "install_log_masking",
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
