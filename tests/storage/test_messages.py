"""Storage errors that say what is wrong and how to fix it: a missing folder, a scheme typo, a
database the server does not have (which ``search`` creates, as it creates any missing storage)."""

from __future__ import annotations

from pathlib import Path

import pytest

from diswot.storage import StorageError, open_storage, parse_storage_url


def test_sqlite_in_a_missing_folder_names_the_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}"
    with pytest.raises(StorageError, match=r"folder .*missing/dir does not exist"):
        open_storage(url)
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    ("url", "close"),
    [("postgress://u:secret@h/db", "postgresql"), ("sqlit:///x.db", "sqlite"), ("mysq+pymysql://h/db", "mysql")],
)
def test_scheme_typo_lists_the_schemes_with_the_close_match(url: str, close: str) -> None:
    with pytest.raises(StorageError) as exc:
        parse_storage_url(url)
    text = str(exc.value)
    assert f"did you mean {close}://?" in text and "valid schemes: sqlite, postgresql" in text
    assert "secret" not in text


def test_missing_postgres_database(pg_server: str) -> None:
    """Reading commands name the database and how to create it; ``search`` (must_exist=False) creates it."""
    import psycopg2

    base = pg_server.rsplit("/", 1)[0]
    name = "diswot_missing_" + pg_server.rsplit("/", 1)[1][-8:]
    url = f"postgresql+psycopg2://{base}/{name}"
    with pytest.raises(StorageError, match=f"no database '{name}': create it .*createdb {name}"):
        open_storage(url, must_exist=True)
    storage = open_storage(url)
    try:
        assert storage.get_all_studies() == []
    finally:
        storage.engine.dispose()  # type: ignore[attr-defined]
        user_host, _, _ = base.partition("/")
        user, _, hostport = user_host.rpartition("@")
        host, _, port = hostport.partition(":")
        admin = psycopg2.connect(host=host, port=int(port or 5432), user=user, dbname="postgres")
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE "{name}"')
        admin.close()


def test_missing_mysql_database(mysql_url: str) -> None:
    import pymysql
    from sqlalchemy.engine import make_url

    parsed = make_url(mysql_url)
    name = f"{parsed.database}_missing"
    url = parsed._replace(database=name).render_as_string(hide_password=False)
    with pytest.raises(StorageError, match=f"no database '{name}': create it"):
        open_storage(url, must_exist=True)
    storage = open_storage(url)
    try:
        assert storage.get_all_studies() == []
    finally:
        storage.engine.dispose()  # type: ignore[attr-defined]
        admin = pymysql.connect(host=parsed.host, port=parsed.port or 3306, user=parsed.username, autocommit=True)
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE `{name}`")
        admin.close()
