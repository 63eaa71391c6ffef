"""Storage URL rules (optuna-dashboard's), driver hints and masked errors."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
import pytest
from optuna.storages import GrpcStorageProxy, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

from diswot.storage import StorageError, mask_url, open_storage, parse_storage_url


@pytest.mark.parametrize(
    ("url", "kind", "target"),
    [
        ("sqlite:///diswot.db", "rdb", "sqlite:///diswot.db"),
        ("postgresql+psycopg2://u:p@h:5432/db", "rdb", "postgresql+psycopg2://u:p@h:5432/db"),
        ("mysql+pymysql://root@127.0.0.1/test", "rdb", "mysql+pymysql://root@127.0.0.1/test"),
        ("journal:///srv/studies/a.log", "journal-file", "/srv/studies/a.log"),
        ("journal://runs/a.log", "journal-file", "runs/a.log"),
        ("runs/a.log", "journal-file", "runs/a.log"),
        ("redis://127.0.0.1:6379/0", "journal-redis", "redis://127.0.0.1:6379/0"),
        ("rediss://:pw@cache:6380/1", "journal-redis", "rediss://:pw@cache:6380/1"),
        ("grpc://127.0.0.1:13000", "grpc", "127.0.0.1:13000"),
        (None, "rdb", "sqlite:///diswot.db"),
    ],
)
def test_url_rules(url: str | None, kind: str, target: str) -> None:
    parsed = parse_storage_url(url)
    assert (parsed.kind, parsed.target) == (kind, target)


def test_plain_paths_follow_optuna_dashboard(tmp_path: Path) -> None:
    journal = tmp_path / "study.journal"
    journal.write_text("")
    assert parse_storage_url(str(journal)).kind == "journal-file"  # an existing non-SQLite file
    db = tmp_path / "study.db"
    optuna.create_study(storage=f"sqlite:///{db}")
    with pytest.raises(StorageError, match=f"use sqlite:///{db}"):
        parse_storage_url(str(db))
    with pytest.raises(StorageError, match="cannot read storage URL"):
        parse_storage_url(str(tmp_path / "missing"))


@pytest.mark.parametrize("url", ["grpc://nohost", "grpc://:12", "journal://", "bad scheme://x"])
def test_malformed_urls(url: str) -> None:
    with pytest.raises(StorageError):
        parse_storage_url(url)


def test_backends_open(tmp_path: Path) -> None:
    assert isinstance(open_storage(f"sqlite:///{tmp_path / 'a.db'}"), RDBStorage)
    journal = open_storage(f"journal://{tmp_path / 'a.log'}")
    assert isinstance(journal, JournalStorage)
    backend = journal._backend
    assert isinstance(backend, JournalFileBackend) and isinstance(backend._lock, JournalFileOpenLock)  # NFS-safe
    assert isinstance(open_storage(str(tmp_path / "b.log")), JournalStorage)


def test_journal_studies_work(tmp_path: Path) -> None:
    url = f"journal://{tmp_path / 'a.log'}"
    study = optuna.create_study(storage=open_storage(url), study_name="j")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    assert len(optuna.load_study(study_name="j", storage=open_storage(url)).trials) == 3


def test_must_exist(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no SQLite database"):
        open_storage(f"sqlite:///{tmp_path / 'none.db'}", must_exist=True)
    with pytest.raises(StorageError, match="no journal file"):
        open_storage(f"journal://{tmp_path / 'none.log'}", must_exist=True)
    assert not (tmp_path / "none.db").exists() and not (tmp_path / "none.log").exists()


def test_journal_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        open_storage(f"journal://{tmp_path / 'no' / 'a.log'}")


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [
        ("postgresql+psycopg2://u:secret@h/db", "psycopg2", "diswot[postgres]"),
        ("postgresql://u:secret@h/db", "psycopg2", "diswot[postgres]"),
        ("mysql+pymysql://u:secret@h/db", "pymysql", "diswot[mysql]"),
        ("redis://:secret@h:6379/0", "redis", "diswot[redis]"),
        ("grpc://127.0.0.1:1", "grpc", "diswot[grpc]"),
    ],
)
def test_missing_driver_names_the_extra(url: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(StorageError) as info:
        open_storage(url)
    message = str(info.value)
    assert f"pip install '{extra}'" in message and "\n" not in message
    assert "secret" not in message


def test_unreachable_servers_fail_masked_and_fast() -> None:
    with pytest.raises(StorageError) as info:
        open_storage("postgresql+psycopg2://u:secret@127.0.0.1:1/db")
    assert "cannot open storage postgresql+psycopg2://u:***@127.0.0.1:1/db" in str(info.value)
    assert "secret" not in str(info.value)
    with pytest.raises(StorageError) as info:
        open_storage("redis://:secret@127.0.0.1:1/0")
    assert "secret" not in str(info.value) and "redis://:***@127.0.0.1:1/0" in str(info.value)
    with pytest.raises(StorageError, match="diswot storage-server"):
        open_storage("grpc://127.0.0.1:1", timeout=0.5)


def test_grpc_open_returns_proxy(grpc_url: str) -> None:
    assert isinstance(open_storage(grpc_url), GrpcStorageProxy)


def test_mask_url() -> None:
    text = "a postgresql+psycopg2://user:s3cr:et@host/db and redis://:pw@h:1/0 and sqlite:///x.db"
    masked = mask_url(text)
    assert "s3cr" not in masked and ":pw@" not in masked
    assert "postgresql+psycopg2://user:***@host/db" in masked and "redis://:***@h:1/0" in masked
    assert repr(parse_storage_url("postgresql://u:secret@h/db")).count("secret") == 0
    assert "secret" not in str(parse_storage_url("postgresql://u:secret@h/db"))


def test_heartbeat_arguments_are_checked() -> None:
    with pytest.raises(StorageError, match="heartbeat"):
        open_storage("sqlite:///:memory:", heartbeat_interval=0)
    with pytest.raises(StorageError, match="grace"):
        open_storage("sqlite:///:memory:", heartbeat_interval=1, grace_period=0)


@pytest.mark.parametrize(
    ("url", "kind"),
    [("redis_runs.log", "journal-file"), ("journal://redis_runs.log", "journal-file"), ("redisx.log", "journal-file")],
)
def test_kind_is_decided_by_the_scheme(url: str, kind: str) -> None:
    assert parse_storage_url(url).kind == kind


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://bob:p@ss@127.0.0.1:1/x", "postgresql://bob:***@127.0.0.1:1/x"),
        ("mysql+pymysql://bob:a@b@c@db:3306/x", "mysql+pymysql://bob:***@db:3306/x"),
        ("redis://:p@ss@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),
        ("'redis://:pw@h:1/0' and user@example.org", "'redis://:***@h:1/0' and user@example.org"),
    ],
)
def test_mask_up_to_the_last_at_of_the_authority(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    "url",
    ["postgresql://bob:p@ss@127.0.0.1:1/x", "mysql+pymysql://bob:p@ss@127.0.0.1:1/x", "redis://:p@ss@127.0.0.1:1/0"],
)
def test_raw_at_in_a_password_is_refused_with_the_escape(url: str) -> None:
    with pytest.raises(StorageError) as info:
        open_storage(url)
    message = str(info.value)
    assert "%40" in message and "ss@127" not in message and "p@ss" not in message


def test_driver_messages_never_show_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """A driver that echoes the (decoded) password: the error shows ``***`` instead."""
    import sqlalchemy

    def echo(url: str, **kwargs: object) -> None:
        raise RuntimeError(f"server said: bad password 'p@ss' for {url}")

    monkeypatch.setattr(sqlalchemy, "create_engine", echo)
    with pytest.raises(StorageError) as info:
        open_storage("postgresql+psycopg2://bob:p%40ss@127.0.0.1:1/x", must_exist=True)
    assert "p@ss" not in str(info.value) and "p%40ss" not in str(info.value) and "***" in str(info.value)


def test_must_exist_refuses_a_database_without_studies(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(StorageError, match="holds no Optuna studies"):
        open_storage(f"sqlite:///{empty}", must_exist=True)
    assert empty.stat().st_size == 0, "nothing was created in it"


def test_must_exist_refuses_a_server_database_without_tables(pg_url: str) -> None:
    import sqlalchemy

    fresh = pg_url.rsplit("/", 1)[0] + "/postgres"  # the server's own database: no Optuna tables there
    with pytest.raises(StorageError, match="holds no Optuna studies"):
        open_storage(fresh, must_exist=True)
    engine = sqlalchemy.create_engine(fresh)
    assert not sqlalchemy.inspect(engine).has_table("studies")
    engine.dispose()
