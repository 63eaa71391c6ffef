"""Storage URLs and backends, heartbeats and resume, study metadata."""

from ._errors import ConfigMismatchError, StorageError
from ._metadata import CONFIG_ATTR, config_diff, record_config
from ._url import DEFAULT_STORAGE, mask_url, open_storage

__all__ = [
    "CONFIG_ATTR",
    "ConfigMismatchError",
    "DEFAULT_STORAGE",
    "StorageError",
    "config_diff",
    "mask_url",
    "open_storage",
    "record_config",
]
