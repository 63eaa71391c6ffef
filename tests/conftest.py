"""Test-wide settings: one compute thread per process.

The suite runs on 2 cores and several tests start worker subprocesses; with more threads than
cores OpenMP's spinning makes every process many times slower. Subprocesses inherit the variables.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

#: fixtures that start a server or connect to one (tests/storage/conftest.py, the dashboard): a
#: test that uses one is an integration test without saying so
SERVER_FIXTURES = frozenset({"pg_server", "pg_url", "mysql_url", "redis_url", "grpc_url", "dashboard"})


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test keeps its reference samples (``diswot score``/``rank``) in a cache of its own."""
    monkeypatch.setenv("DISWOT_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that use a server fixture ``integration``, and leave out the ``slow`` ones
    unless ``-m`` mentions them, so ``-m "not integration"`` stays fast and ``-m slow`` runs them."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
    if "slow" in (config.getoption("markexpr") or ""):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
