"""Workers started together on a fresh SQLite file: creating the storage and the study is safe.

Before the storage retried its creation, one of two ``diswot search`` processes started at once
in an empty folder failed in 2 of 4 tries (``UNIQUE constraint failed: alembic_version.version_num``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

#: one process: open the storage as a search does (async commit), then create or load one study
_OPEN = """
import sys, optuna
from diswot.storage import open_storage, record_config
optuna.logging.set_verbosity(optuna.logging.WARNING)
storage = open_storage(sys.argv[1], async_commit=True)
study = optuna.create_study(storage=storage, study_name="c", direction="maximize", load_if_exists=True)
record_config(study, {"space": "s0"})
"""


def _start_together(commands: list[list[str]], cwd: Path) -> list[subprocess.CompletedProcess[str]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(c, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    done = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


@pytest.mark.integration
@pytest.mark.parametrize("round_", range(4))
def test_processes_create_one_sqlite_storage_together(round_: int, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    done = _start_together([[sys.executable, "-c", _OPEN, url] for _ in range(6)], tmp_path)
    assert [d.returncode for d in done] == [0] * 6, [d.stderr[-400:] for d in done if d.returncode]
    import optuna

    study = optuna.load_study(study_name="c", storage=url)
    assert study.user_attrs["diswot:config"] == {"space": "s0"}


@pytest.mark.integration
def test_searches_started_together_in_an_empty_folder(tmp_path: Path) -> None:
    search = [
        *(sys.executable, "-m", "diswot.pipeline.cli", "search", "--space", "s0", "--teacher", "resnet20"),
        *("--dataset", "synthetic", "--batch-size", "4", "--proxy", "diswot", "--n-trials", "1"),
        *("--study", "c", "--pick-top", "0", "--note-every", "0", "--no-progress"),
    ]
    done = _start_together([search] * 3, tmp_path)
    assert [d.returncode for d in done] == [0] * 3, [d.stderr[-400:] for d in done if d.returncode]
