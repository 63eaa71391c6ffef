"""One storage URL string for every backend (the same rules as optuna-dashboard).

=====================================  =================================================
URL                                    backend
=====================================  =================================================
``sqlite:///diswot.db`` (default)      :class:`optuna.storages.RDBStorage` (SQLite)
``postgresql+psycopg2://u:p@h/db``     RDBStorage (PostgreSQL, extra ``postgres``)
``mysql+pymysql://u:p@h/db``           RDBStorage (MySQL / MariaDB, extra ``mysql``)
``journal:///abs/path.log``,           :class:`optuna.storages.JournalStorage` on a
``journal://rel/path.log``, ``x.log``  :class:`~optuna.storages.journal.JournalFileBackend`
                                       with the NFS-safe ``JournalFileOpenLock``
``redis://host:6379/0``                JournalStorage on ``JournalRedisBackend`` (extra ``redis``)
``grpc://host:port``                   :class:`optuna.storages.GrpcStorageProxy` to a
                                       ``diswot storage-server`` (extra ``grpc``)
=====================================  =================================================

As in optuna-dashboard, a plain path to an existing file that is not an SQLite database is a
journal file, and a plain path to an SQLite file is refused with the ``sqlite:///`` spelling.
"""

from __future__ import annotations

import difflib
import logging
import os
import random
import re
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.storages import BaseStorage

from ._errors import StorageError
from ._optuna import journal_file_backend

__all__ = [
    "DEFAULT_STORAGE",
    "STORAGE_ENV",
    "StorageURL",
    "default_artifact_dir",
    "mask_url",
    "open_storage",
    "parse_storage_url",
    "storage_url",
]

log = logging.getLogger(__name__)

DEFAULT_STORAGE = "sqlite:///diswot.db"
#: the environment variable that gives the storage URL when none is passed (keeps a password off command lines)
STORAGE_ENV = "DISWOT_STORAGE"


def storage_url(url: str | None = None) -> str:
    """``url``, else ``$DISWOT_STORAGE``, else the default SQLite file: where a study is kept."""
    return url or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE


def default_artifact_dir(url: str) -> Path:
    """Where distilled students' checkpoints go (Optuna artifacts): ``<SQLite file's folder>/artifacts``,
    else ``./artifacts``."""
    if url.startswith("sqlite:"):
        from sqlalchemy.engine import make_url

        database = make_url(url).database
        if database and database != ":memory:":
            return Path(database).expanduser().resolve().parent / "artifacts"
    return Path("artifacts").resolve()


#: ``scheme://user:`` then the password: everything up to the authority's last ``@`` (a password
#: with an unescaped ``@`` is masked whole, not just up to its first ``@``)
_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s'\"]*:)(?P<pw>[^/\s'\"]*)(?P<tail>@)")
_SQLITE_HEADER = b"SQLite format 3\x00"
_EXAMPLES = (
    "use e.g. sqlite:///diswot.db, postgresql+psycopg2://user:pass@host/db, mysql+pymysql://user:pass@host/db, "
    "journal:///path/to/study.log, redis://host:6379/0 or grpc://host:13000"
)
#: (exact URL scheme, driver module, how to install it)
_DRIVERS: tuple[tuple[str, str, str], ...] = (
    ("postgresql+psycopg2", "psycopg2", "pip install 'diswot[postgres]'"),
    ("postgresql+psycopg", "psycopg", "pip install 'psycopg[binary]'"),
    ("postgresql+pg8000", "pg8000", "pip install pg8000"),
    ("postgresql", "psycopg2", "pip install 'diswot[postgres]'"),
    ("mariadb", "pymysql", "pip install 'diswot[mysql]'"),
    ("mysql+pymysql", "pymysql", "pip install 'diswot[mysql]'"),
    ("mysql+mysqldb", "MySQLdb", "pip install mysqlclient, or use mysql+pymysql:// with pip install 'diswot[mysql]'"),
    ("mysql", "pymysql", "pip install 'diswot[mysql]'"),
    ("mariadb+pymysql", "pymysql", "pip install 'diswot[mysql]'"),
    ("redis", "redis", "pip install 'diswot[redis]'"),
    ("rediss", "redis", "pip install 'diswot[redis]'"),
    ("grpc", "grpc", "pip install 'diswot[grpc]'"),
)


#: the schemes a storage URL may start with (an SQL scheme may add ``+driver``)
SCHEMES = ("sqlite", "postgresql", "mysql", "mariadb", "journal", "redis", "rediss", "grpc")


def _unknown_scheme(url: str, scheme: str) -> StorageError:
    """The error for a scheme no backend reads, with the closest valid one."""
    base = scheme.split("+", 1)[0]
    close = difflib.get_close_matches(base, SCHEMES, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]}://? " if close else ""
    return StorageError(
        f"unknown storage scheme {base}:// in {mask_url(url)!r}; {hint}valid schemes: {', '.join(SCHEMES)} "
        f"({_EXAMPLES.removeprefix('use ')})"
    )


#: URL scheme without a driver -> (module, driver to name) in order of preference; None: SQLAlchemy's default
_DEFAULT_DRIVERS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "postgresql": (("psycopg", "psycopg"), ("psycopg2", "psycopg2")),
    "mysql": (("MySQLdb", None), ("pymysql", "pymysql")),
    "mariadb": (("MySQLdb", None), ("pymysql", "pymysql")),
}


def mask_url(text: str) -> str:
    """Replace the password of every URL in ``text`` with ``***``."""
    return _PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}", text)


@dataclass(frozen=True, kw_only=True)
class StorageURL:
    """A parsed storage URL: ``kind`` is ``rdb``, ``journal-file``, ``journal-redis`` or ``grpc``.

    ``target`` is what the backend is opened with: the SQLAlchemy URL, the journal file's path,
    the Redis URL, or ``host:port``.
    """

    url: str
    kind: str
    target: str

    @property
    def is_journal(self) -> bool:
        """A journal storage (file or Redis): no native heartbeat in Optuna."""
        return self.kind.startswith("journal")

    def __str__(self) -> str:
        return mask_url(self.url)

    def __repr__(self) -> str:
        return f"StorageURL(kind={self.kind!r}, url={mask_url(self.url)!r})"


def _check_authority(url: str) -> None:
    """Refuse a password with a raw ``@``: drivers split the authority at its first ``@``."""
    authority = url.split("://", 1)[1].split("/", 1)[0] if "://" in url else ""
    if authority.count("@") > 1:
        raise StorageError(
            f"the storage URL {mask_url(url)!r} has more than one '@' before its host: "
            "write each '@' of a user name or password as %40 (e.g. user:p%40ss@host)"
        )


def _scrub(text: str, url: str) -> str:
    """``text`` (e.g. a driver's message) with ``url``'s password masked, URL-encoded or not."""
    from urllib.parse import unquote

    text = mask_url(text)
    match = _PASSWORD.search(url)
    if match:
        for secret in {match["pw"], unquote(match["pw"])}:
            if len(secret) >= 3:
                text = text.replace(secret, "***")
    return text


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def _is_sqlite_file(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER
    except OSError:
        return False


def parse_storage_url(url: str | None) -> StorageURL:
    """Classify ``url`` (default ``sqlite:///diswot.db``); raises :class:`StorageError` when unreadable."""
    url = (url or DEFAULT_STORAGE).strip()
    scheme = _scheme(url)
    if scheme:
        _check_authority(url)
    if scheme == "journal":
        path = url[len("journal://") :]
        if not path:
            raise StorageError(
                f"journal URL {mask_url(url)!r} has no path; use journal:///abs/path.log or journal://rel/path.log"
            )
        return StorageURL(url=url, kind="journal-file", target=path)
    if scheme in ("redis", "rediss"):
        return StorageURL(url=url, kind="journal-redis", target=url)
    if scheme == "grpc":
        hostport = url[len("grpc://") :].rstrip("/")
        host, sep, port = hostport.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise StorageError(f"cannot read {mask_url(url)!r} as grpc://host:port, e.g. grpc://127.0.0.1:13000")
        return StorageURL(url=url, kind="grpc", target=f"{host.strip('[]')}:{port}")
    if scheme:
        if not re.fullmatch(r"[a-z][a-z0-9+.\-]*", scheme):
            raise StorageError(f"cannot read storage URL {mask_url(url)!r}; {_EXAMPLES}")
        if scheme.split("+", 1)[0] not in SCHEMES:
            raise _unknown_scheme(url, scheme)
        return StorageURL(url=url, kind="rdb", target=url)
    # a plain path, as optuna-dashboard reads it
    if os.path.isfile(url) and _is_sqlite_file(url):
        raise StorageError(f"{url} is an SQLite database: use sqlite:///{url}")
    if url.endswith(".log") or os.path.isfile(url):
        return StorageURL(url=url, kind="journal-file", target=url)
    raise StorageError(f"cannot read storage URL {mask_url(url)!r}; {_EXAMPLES}")


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _check_driver(parsed: StorageURL) -> None:
    scheme = _scheme(parsed.url)
    if scheme in _DEFAULT_DRIVERS and any(_importable(m) for m, _ in _DEFAULT_DRIVERS[scheme]):
        return
    for prefix, module, fix in _DRIVERS:
        if scheme == prefix:
            if not _importable(module):
                raise StorageError(f"the {module} driver for {scheme}:// storage is missing: {fix}")
            return


def _with_driver(url: str) -> str:
    """``postgresql://`` and ``mysql://`` with the driver that is installed.

    SQLAlchemy's default drivers (psycopg 3 since SQLAlchemy 2.1, mysqlclient) are not the
    extras' (psycopg2-binary, PyMySQL); when only the extra's driver is installed, it is named.
    """
    scheme = _scheme(url)
    for module, driver in _DEFAULT_DRIVERS.get(scheme, ()):
        if _importable(module):
            return url if driver is None else f"{scheme}+{driver}{url[len(scheme) :]}"
    return url


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _open_rdb(
    parsed: StorageURL,
    *,
    heartbeat_interval: int | None,
    grace_period: int | None,
    stale_trial_callback: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None,
    must_exist: bool,
    async_commit: bool = False,
) -> BaseStorage:
    url = _with_driver(parsed.url)
    if url.startswith("sqlite:///") and must_exist:
        path = url[len("sqlite:///") :]
        if path and path != ":memory:" and not os.path.exists(path):
            raise StorageError(f"no SQLite database at {path}; check `storage`")
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :].split("?", 1)[0]
        folder = os.path.dirname(os.path.abspath(path)) if path and path != ":memory:" else ""
        if folder and not os.path.isdir(folder):
            raise StorageError(f"cannot create SQLite database {path}: folder {folder} does not exist")
    kwargs: dict[str, Any] = {}
    if heartbeat_interval is not None:
        kwargs.update(
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=stale_trial_callback,
        )
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith(("postgresql", "mysql", "mariadb")):
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    if must_exist and not _has_studies_table(url, engine_kwargs):
        raise StorageError(
            f"storage {mask_url(url)} holds no Optuna studies (no tables); check `storage`, or run diswot search first"
        )
    if async_commit and _scheme(url) in ("postgresql+psycopg2", "postgresql+psycopg"):
        engine_kwargs["connect_args"]["options"] = "-c synchronous_commit=off"
    attempts = 6  # workers started together on a fresh database race to create the tables and the version row
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
            if async_commit and url.startswith("sqlite:///"):
                _sqlite_async_commit(storage)
            return storage
        except Exception as exc:  # sqlalchemy raises many kinds of errors for bad URLs and servers
            text = str(exc).lower()
            # Workers that start together on a fresh database race to create the tables.
            if attempt < attempts - 1 and not must_exist and _missing_database(exc):
                _create_database(url, engine_kwargs)
                continue
            if attempt < attempts - 1 and any(
                race in text for race in ("already exists", "duplicate", "unique constraint", "database is locked")
            ):
                log.debug("retrying storage creation after %s", mask_url(_first_line(exc)))
                time.sleep(0.2 + 0.3 * attempt + random.random() * 0.3)
                continue
            raise StorageError(f"cannot open storage {mask_url(url)}: {_scrub(_first_line(exc), url)[:300]}") from None
    raise AssertionError("unreachable")


def _missing_database(exc: BaseException) -> bool:
    """Whether ``exc`` says the server has no database of the URL's name (PostgreSQL, MySQL/MariaDB)."""
    text = str(exc)
    return bool(re.search(r'database "[^"]*" does not exist|Unknown database', text))


def _database_hint(url: str) -> str:
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    return (
        f"the server has no database {name!r}: create it (PostgreSQL: createdb {name}; MySQL: CREATE DATABASE {name}), "
        "or let diswot search create it"
    )


def _create_database(url: str, engine_kwargs: dict[str, Any]) -> None:
    """Create the database named in ``url`` on its server (``search`` creates missing storage)."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = parsed.database or ""
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise StorageError(f"cannot open storage {mask_url(url)}: {_database_hint(url)}")
    # the server's maintenance database (PostgreSQL) or none (MySQL); URL.set ignores None
    server = parsed._replace(database="postgres" if parsed.get_backend_name() == "postgresql" else None)
    kwargs = {k: v for k, v in engine_kwargs.items() if k != "connect_args"}
    kwargs["connect_args"] = {"connect_timeout": 10}
    engine = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT", **kwargs)
    quote = '"' if parsed.get_backend_name() == "postgresql" else "`"
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f"CREATE DATABASE {quote}{name}{quote}"))
        log.warning("created database %s on %s", name, mask_url(url))
    except Exception as exc:
        if "already exists" in str(exc) or "database exists" in str(exc):  # another worker created it
            return
        raise StorageError(
            f"cannot create database {name!r} for storage {mask_url(url)}: {_scrub(_first_line(exc), url)[:200]}; "
            "create it yourself (createdb, or CREATE DATABASE)"
        ) from None
    finally:
        engine.dispose()


def _has_studies_table(url: str, engine_kwargs: dict[str, Any]) -> bool:
    """Whether the database behind ``url`` has Optuna's tables; reads only, creates nothing."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url, **engine_kwargs)
        try:
            return sqlalchemy.inspect(engine).has_table("studies")
        finally:
            engine.dispose()
    except Exception as exc:  # bad URLs and unreachable servers: many kinds of errors
        if _missing_database(exc):
            raise StorageError(f"cannot open storage {mask_url(url)}: {_database_hint(url)}") from None
        raise StorageError(f"cannot open storage {mask_url(url)}: {_scrub(_first_line(exc), url)[:300]}") from None


def _sqlite_set_wal(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # stays set in the file; a no-op when it already is
    except Exception as exc:  # another worker holds the database while it is converted: it converts it
        log.debug("PRAGMA journal_mode=WAL: %s", exc)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_async_commit(storage: Any) -> None:
    """WAL with ``synchronous=NORMAL``: a commit is not flushed to the disk (a checkpoint is), so it
    costs microseconds instead of milliseconds; a killed process loses nothing it committed, a power
    loss at most the last commits, and the database is never corrupted (SQLite's WAL guarantees).
    """
    from sqlalchemy import event

    event.listen(storage.engine, "connect", _sqlite_set_wal)
    storage.engine.dispose()  # the connections opened so far reconnect with the pragmas


def _open_journal_file(parsed: StorageURL, *, must_exist: bool, async_commit: bool = False) -> BaseStorage:

    path = parsed.target
    if must_exist and not os.path.isfile(path):
        raise StorageError(f"no journal file at {path}; check `storage`")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise StorageError(f"cannot create journal {path}: folder {folder} does not exist")
    if _is_sqlite_file(path):
        raise StorageError(f"{path} is an SQLite database, not a journal: use sqlite:///{path}")
    try:
        return optuna.storages.JournalStorage(journal_file_backend(path, async_commit=async_commit))
    except OSError as exc:
        raise StorageError(f"cannot open journal {path}: {exc.strerror or exc}") from None


def _open_journal_redis(parsed: StorageURL) -> BaseStorage:
    import redis
    from optuna.storages.journal import JournalRedisBackend

    try:
        client = redis.Redis.from_url(parsed.target, socket_connect_timeout=10)
        client.ping()
        client.close()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.JournalStorage(JournalRedisBackend(parsed.target))
    except (redis.RedisError, ValueError, OSError) as exc:
        raise StorageError(
            f"cannot open storage {mask_url(parsed.url)}: {_scrub(_first_line(exc), parsed.url)[:300]}"
        ) from None


def _open_grpc(parsed: StorageURL, *, timeout: float) -> BaseStorage:
    host, _, port = parsed.target.rpartition(":")
    hint = f"start one with: diswot storage-server `storage` URL `host` {host} `port` {port}"
    deadline = time.monotonic() + timeout
    while True:  # the server may be starting (workers and proxy started together): wait up to timeout
        try:
            socket.create_connection((host, int(port)), timeout=max(0.1, deadline - time.monotonic())).close()
            break
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise StorageError(
                    f"no storage server answers at {parsed.target} within {timeout:g}s ({exc.strerror or exc}); {hint}"
                ) from None
            time.sleep(0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        proxy = optuna.storages.GrpcStorageProxy(host=host, port=int(port))
    try:
        proxy.wait_server_ready(timeout=timeout)
    except ConnectionError:
        proxy.close()
        raise StorageError(f"no storage server answers at {parsed.target} within {timeout:g}s; {hint}") from None
    return proxy


def open_storage(
    url: str | None = None,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    stale_trial_callback: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
    must_exist: bool = False,
    timeout: float = 10.0,
    async_commit: bool = False,
) -> BaseStorage:
    """Open the storage behind ``url`` (default ``sqlite:///diswot.db``), checking it is reachable.

    Args:
        url: A storage URL (see the module docstring for the rules).
        heartbeat_interval: Seconds between heartbeats of running trials; RDB storages only
            (Optuna's native heartbeat). Journal and gRPC storages ignore it here; see
            :class:`~diswot.storage.TrialHeartbeat`.
        grace_period: Seconds without a heartbeat before a running trial is stale (RDB; Optuna's
            default is twice the interval).
        stale_trial_callback: Called with each stale trial Optuna fails, e.g.
            :class:`~diswot.storage.RetryStaleTrial` (RDB only).
        must_exist: Refuse an SQLite or journal file that does not exist yet (instead of creating it).
        timeout: Seconds to wait for a gRPC storage server.
        async_commit: Commit without waiting for the disk, for a search's many small writes:
            SQLite in WAL mode with ``synchronous=NORMAL``, PostgreSQL with
            ``synchronous_commit=off``, a journal file without ``fsync``. What a process has
            committed survives that process being killed; an OS crash or power loss may lose the
            last commits (SQLite and PostgreSQL stay consistent). Readers see every commit at once.

    Raises:
        StorageError: for a malformed or unreachable URL or a missing driver (naming the extra to
        install), with the URL's password masked.
    """
    if heartbeat_interval is not None and (isinstance(heartbeat_interval, bool) or heartbeat_interval < 1):
        raise StorageError(f"the heartbeat interval must be a whole number of seconds >= 1, got {heartbeat_interval!r}")
    if grace_period is not None and grace_period < 1:
        raise StorageError(f"the grace period must be >= 1 second, got {grace_period!r}")
    parsed = parse_storage_url(url)
    _check_driver(parsed)
    if parsed.kind == "rdb":
        return _open_rdb(
            parsed,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            stale_trial_callback=stale_trial_callback,
            must_exist=must_exist,
            async_commit=async_commit,
        )
    if parsed.kind == "journal-file":
        return _open_journal_file(parsed, must_exist=must_exist, async_commit=async_commit)
    if parsed.kind == "journal-redis":
        return _open_journal_redis(parsed)
    return _open_grpc(parsed, timeout=timeout)
