"""Shared helpers for pipeline tests: run the real CLI in-process or as a subprocess; a SQLite URL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from diswot.pipeline.cli import main


#: the start of a small, fast S0 search on synthetic images, for tests that need a study
SMALL_S0 = ["search", "--space", "s0", "--teacher", "resnet20", "--dataset", "synthetic", "--batch-size", "8"]
#: ``SearchConfig`` keywords of a small, fast S0 scoring with a rank-aggregated score's reference sample of 8
SMALL_CONFIG = dict(
    space="s0",
    teacher="resnet20",
    dataset="synthetic",
    batch_size=8,
    image_size=16,
    device="cpu",
    num_classes=10,
    reference_size=8,
)


@pytest.fixture(autouse=True, scope="module")
def benchmark_scripts_leave_no_trace(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test module of a benchmark script (``test_bench_*.py``) leaves the proxy registry and
    ``sys.modules`` as it found them: importing ``bench_cross_ranking`` registers its candidate
    signals (``benchmarks/_candidate_proxies.py``), which no other test module may see."""
    if not Path(str(request.module.__file__)).name.startswith("test_bench_"):
        yield
        return
    from diswot.proxies import PROXIES

    registered = dict(PROXIES._items)
    imported = set(sys.modules)
    yield
    PROXIES._items.clear()
    PROXIES._items.update(registered)
    for name in set(sys.modules) - imported:
        if name.startswith(("bench_", "_candidate_proxies", "_significance", "_search", "code_shape", "config_walk")):
            del sys.modules[name]


def run_cli(*args: str) -> int:
    """Run ``diswot ARGS`` in this process and return the exit status."""
    return main(list(args))


def cli_env() -> dict[str, str]:
    """Environment for CLI subprocesses: one thread each (the test machine has 2 cores)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_process(
    *args: str, cwd: Path | None = None, timeout: float = 300, extra: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``diswot ARGS`` as a separate process (``extra``: a launcher such as torchrun before ``-m``)."""
    return subprocess.run(
        [sys.executable, *(extra or []), "-m", "diswot.pipeline.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=cli_env(),
    )


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"
