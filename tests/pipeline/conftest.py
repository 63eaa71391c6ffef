"""Shared helpers for pipeline tests: run the real CLI in-process or as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from diswot.pipeline.cli import main


def run_cli(*args: str) -> int:
    """Run ``diswot ARGS`` in this process and return the exit status."""
    return main(list(args))


def run_process(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``diswot ARGS`` as a separate process (the installed console script's module)."""
    return subprocess.run(
        [sys.executable, "-m", "diswot.pipeline.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"
