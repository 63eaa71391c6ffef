"""Every backend: a 2-worker S0 search (``diswot search --workers 2``) on the real server.

Worker 0 is this process (``run_cli``), worker 1 a real ``diswot search`` subprocess; the study
must end with exactly the requested trials, numbered 0..n-1, run by both workers.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from diswot.pipeline.cli import _workers as workers
from diswot.samplers import lineage
from diswot.storage import open_storage, record

from ..pipeline.conftest import run_cli
from .conftest import FAST_SEARCH, journal_path, unique

#: every test runs a second worker process (and most a server)
pytestmark = pytest.mark.integration

N_TRIALS = 4


def check_two_worker_search(url: str) -> None:
    study_name = unique("two_workers")
    assert (
        run_cli(*FAST_SEARCH, "--storage", url, "--study", study_name, "--n-trials", str(N_TRIALS), "--workers", "2")
        == 0
    )
    study = optuna.load_study(study_name=study_name, storage=open_storage(url))
    trials = study.get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(N_TRIALS))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials), [t.state for t in trials]
    workers = {t.system_attrs[record.WORKER]["index"] for t in trials}
    assert workers == {0, 1}, "both workers ran trials"
    pids = {t.system_attrs[record.WORKER]["pid"] for t in trials}
    assert len(pids) == 2
    assert all(t.user_attrs["arch"].startswith("ResNet[") for t in trials)


def test_sqlite(tmp_path: Path) -> None:
    check_two_worker_search(f"sqlite:///{tmp_path / 'study.db'}")


def test_postgresql(pg_url: str) -> None:
    check_two_worker_search(pg_url)


def test_mariadb(mysql_url: str) -> None:
    check_two_worker_search(mysql_url)


def test_journal_file(tmp_path: Path) -> None:
    check_two_worker_search(journal_path(tmp_path))


def test_redis_journal(redis_url: str) -> None:
    check_two_worker_search(redis_url)


def test_grpc_proxy(grpc_url: str) -> None:
    check_two_worker_search(grpc_url)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["pg", "mysql", "journal", "redis"])
def test_four_workers_many_trials(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slow: 4 workers, 24 trials, with the evolution past its random phase (population 8)."""
    monkeypatch.setattr(workers, "usable_cores", lambda: 4)  # --workers runs at most one per core on the CPU
    url = journal_path(tmp_path) if backend == "journal" else request.getfixturevalue(f"{backend}_url")
    name = unique("four")
    args = [*FAST_SEARCH, "--storage", url, "--study", name, "--population-size", "8", "--tournament-size", "4"]
    assert run_cli(*args, "--n-trials", "24", "--workers", "4") == 0
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    trials = study.get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(24))
    assert {t.system_attrs[record.WORKER]["index"] for t in trials} == {0, 1, 2, 3}
    assert any(lineage(t, key=record.LINEAGE)[0] == "mutation" for t in trials)
