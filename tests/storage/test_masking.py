"""No log line, note or error of a search on ``postgresql://user:secret@...`` contains ``secret``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import optuna

from diswot.storage import open_storage

from .conftest import FAST_SEARCH, unique


def test_password_never_logged(pg_server: str) -> None:
    user, rest = pg_server.split("@", 1)
    url = f"postgresql://{user}:secret@{rest}"  # trust auth: any password is accepted
    name = unique("masked")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "diswot.pipeline.cli",
            "-vv",
            *FAST_SEARCH,
            "--storage",
            url,
            "--study",
            name,
            "--n-trials",
            "2",
            "--workers",
            "2",
            "--note-every",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if k != "DISWOT_STORAGE"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "INFO diswot.pipeline.study: worker 1: study" in output, "both workers logged"
    assert "***@" in output, "the storage is shown, masked"
    assert "secret" not in output
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    stored = json.dumps(study._storage.get_study_system_attrs(study._study_id)) + json.dumps(study.user_attrs)
    stored += json.dumps([t.system_attrs for t in study.trials])
    assert "dashboard:note_str" in stored and "secret" not in stored, "notes and attributes are masked too"


def test_bad_server_error_is_masked(pg_server: str) -> None:
    user, rest = pg_server.split("@", 1)
    host_port = rest.split("/", 1)[0]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "diswot.pipeline.cli",
            *FAST_SEARCH,
            "--storage",
            # a role the server does not have: refused (a missing database alone, search would create)
            f"postgresql://no_such_role_{unique()}:secret@{host_port}/no_such_db_{unique()}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot open storage" in lines[0] and "***@" in lines[0]
    assert "secret" not in result.stdout + result.stderr
