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

#: the files that take longest (``pytest --durations=80``), run first, longest first: the two test
#: processes take whole files (``--dist loadfile``) in collection order, and a long file collected
#: last (tests/storage/ is) would leave one process idle while the other finishes it
LONGEST_FIRST = (
    "pipeline/test_cli_search.py",
    "pipeline/test_readme_pipeline.py",
    "storage/test_pick_workers.py",
    "pipeline/test_distill.py",
    "pipeline/test_hints.py",
    "storage/test_backends.py",
    "pipeline/test_workers.py",
    "storage/test_killed_worker.py",
    "pipeline/test_workers_share.py",
    "pipeline/test_train.py",
    "pipeline/test_readme_python.py",
    "storage/test_concurrent_creation.py",
    "storage/test_masking.py",
    "pipeline/test_multi_objective.py",
    "pipeline/test_dashboard.py",
    "storage/test_trial_writes.py",
)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test keeps its reference samples (``diswot score``/``rank``) in a cache of its own."""
    monkeypatch.setenv("DISWOT_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that use a server fixture ``integration``, and leave out the ``slow`` ones
    unless ``-m`` mentions them, so ``-m "not integration"`` stays fast and ``-m slow`` runs them;
    the longest files first (:data:`LONGEST_FIRST`), the others in collection order."""
    here = os.path.dirname(__file__)
    rank = {os.path.join(here, name): i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(str(item.path), len(rank)))  # stable: a file's tests keep their order
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
    if "slow" in (config.getoption("markexpr") or ""):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
