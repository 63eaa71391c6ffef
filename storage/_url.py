"""One storage URL string for every backend (the same rules as optuna-dashboard)."""

from __future__ import annotations

import logging
import re
from typing import Any

import optuna
from optuna.storages import BaseStorage

from ._errors import StorageError

__all__ = ["DEFAULT_STORAGE", "mask_url", "open_storage"]

log = logging.getLogger(__name__)

DEFAULT_STORAGE = "sqlite:///diswot.db"
_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<tail>@)")


def mask_url(text: str) -> str:
    """Replace the password of every URL in ``text`` with ``***``."""
    return _PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}", text)


def _driver_hint(url: str) -> str | None:
    for prefix, module, extra in (
        ("postgresql", "psycopg2", "postgres"),
        ("mysql+pymysql", "pymysql", "mysql"),
        ("mysql", "MySQLdb", "mysql"),
    ):
        if url.startswith(prefix):
            try:
                __import__(module)
            except ImportError:
                return f"the driver {module} for {prefix} storage is missing: pip install 'diswot[{extra}]'"
            return None
    return None


def open_storage(
    url: str | None = None,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
) -> BaseStorage:
    """Open the storage behind ``url`` (default ``sqlite:///diswot.db``), checking it is reachable.

    Raises:
        StorageError: for a malformed or unreachable URL or a missing driver, with the URL's
        password masked.
    """
    url = url or DEFAULT_STORAGE
    hint = _driver_hint(url)
    if hint:
        raise StorageError(hint)
    if "://" not in url:
        raise StorageError(
            f"cannot read storage URL {mask_url(url)!r}; use e.g. sqlite:///diswot.db, "
            "postgresql+psycopg2://user:pass@host/db or mysql+pymysql://user:pass@host/db"
        )
    kwargs: dict[str, Any] = {}
    if heartbeat_interval is not None:
        kwargs.update(heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith(("postgresql", "mysql")):
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
    except Exception as exc:  # sqlalchemy raises many kinds of errors for bad URLs and servers
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(f"cannot open storage {mask_url(url)}: {mask_url(first)[:300]}") from None
