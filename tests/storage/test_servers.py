"""The storage tests' own servers: started when none listens, never under CI, skipped with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import server_address
from .servers import Unavailable, listening, start_redis


def _cannot_start(folder: Path) -> str:
    raise Unavailable("no binary here")


def test_a_missing_server_fails_loudly_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        server_address("Redis", "127.0.0.1:1", start_redis, tmp_path)


def test_a_server_that_cannot_be_started_is_skipped_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(
        pytest.skip.Exception, match="nothing listens at 127.0.0.1:1, and none can be started here: no binary here"
    ):
        server_address("Redis", "127.0.0.1:1", _cannot_start, tmp_path)


@pytest.mark.integration
def test_redis_is_started_when_none_listens(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import redis

    monkeypatch.delenv("CI", raising=False)
    address = server_address("Redis", "127.0.0.1:1", start_redis, tmp_path)
    assert address != "127.0.0.1:1" and listening(address)
    host, _, port = address.rpartition(":")
    client = redis.Redis(host=host, port=int(port))
    assert client.ping()
    client.close()
