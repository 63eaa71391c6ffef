"""Many workers on one study: --workers, --max-trials, Ctrl-C, journal stale trials, --allow-change."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from diswot.pipeline import study as runner
from diswot.pipeline import worker
from diswot.pipeline.cli import _workers as workers
from diswot.pipeline.cli import search as cmd_search
from diswot.pipeline.cli import build_parser
from diswot.storage import open_storage, record

from .conftest import SMALL_S0, run_cli

FAST = [
    *SMALL_S0,
    "--proxy",
    "diswot",
    "--no-progress",
    "--top",
    "3",
]
#: slower trials, to be caught mid-trial
SLOW = [*FAST, "--batch-size", "64"]


def trials_of(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=open_storage(url)).get_trials(deepcopy=False)


def start(*args: str, url: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "diswot.pipeline.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, DISWOT_STORAGE=url, OMP_NUM_THREADS="1"),
        **kwargs,  # type: ignore[arg-type]
    )


def wait_until(predicate, timeout: float, proc: subprocess.Popen[str]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the search ended early ({proc.returncode}): {proc.communicate()[0][-3000:]}")
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"timed out: {proc.communicate()[0][-3000:]}")


def running(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    try:
        trials = trials_of(url, study)
    except KeyError:  # the study is not created yet
        return []
    return [
        t
        for t in trials
        if t.state == TrialState.RUNNING and "arch" in t.user_attrs and record.WORKER in t.system_attrs
    ]


def test_split_and_seeds() -> None:
    assert workers.split_trials(10, 3) == [4, 3, 3]
    assert workers.split_trials(2, 4) == [1, 1]
    assert worker.sampler_seed(5, None) == worker.sampler_seed(5, 0) == 5
    seeds = {worker.sampler_seed(5, i) for i in range(8)}
    assert len(seeds) == 8 and worker.sampler_seed(5, 3) == worker.sampler_seed(5, 3)


def test_worker_command_line_keeps_options_but_not_the_password() -> None:
    args = build_parser().parse_args(
        [
            "-v",
            *FAST,
            "--storage",
            "postgresql://u:secret@h/db",
            "--study",
            "x",
            "--workers",
            "3",
            "--n-trials",
            "9",
            "--heartbeat",
            "5",
            "--allow-change",
            "max_layers",
            "--max-params",
            "1M",
            "--seed",
            "7",
        ]
    )
    argv = workers.worker_argv(args.parser, args, 2, 3)
    assert "secret" not in " ".join(argv) and "--storage" not in argv
    joined = " ".join(argv)
    for part in (
        "-v search",
        "--study x",
        "--heartbeat 5",
        "--allow-change max_layers",
        "--max-params 1M",
        "--seed 7",
        "--teacher resnet20",
        "--worker-index 2",
        "--n-trials 3",
        "--no-progress",
        "--child",
    ):
        assert part in joined, part
    assert "--workers" not in argv


def test_on_the_cpu_workers_are_at_most_one_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "usable_cores", lambda: 2)
    assert [workers.local_workers(n, "cpu") for n in (1, 2, 3, 8)] == [1, 2, 2, 2]
    assert workers.local_workers(8, "cuda") == 8 == workers.local_workers(8, "cuda:1"), "a GPU takes all of them"
    if not torch.cuda.is_available():
        assert workers.local_workers(8, "auto") == 2
    monkeypatch.undo()
    assert 1 <= workers.usable_cores() <= (os.cpu_count() or 1)


@pytest.mark.integration
def test_workers_beyond_the_cores_run_as_one_per_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cmd_search, "usable_cores", lambda: 2)
    monkeypatch.setattr(workers, "usable_cores", lambda: 2)
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert run_cli(*FAST, "--storage", url, "--study", "cores", "--n-trials", "6", "--workers", "5") == 0
    assert "--workers 5 on 2 CPU cores: running 2 worker processes" in " ".join(capsys.readouterr().err.split())
    trials = trials_of(url, "cores")
    assert len(trials) == 6 and {t.system_attrs[record.WORKER]["index"] for t in trials} == {0, 1}


@pytest.mark.integration
def test_max_trials_caps_the_study_across_workers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    args = [*FAST, "--storage", url, "--study", "cap", "--max-trials", "3"]
    assert run_cli(*args, "--n-trials", "10", "--workers", "2") == 0
    counted = [t for t in trials_of(url, "cap") if t.state in runner.COUNTED_STATES]
    assert 3 <= len(counted) <= 4, "running trials of other workers may finish after the cap"
    before = len(trials_of(url, "cap"))
    assert run_cli(*args, "--n-trials", "5") == 0
    assert len(trials_of(url, "cap")) == before, "a capped study runs nothing more"


@pytest.mark.integration
def test_ctrl_c_fails_running_trials_and_a_rerun_continues(tmp_path: Path) -> None:
    url = f"journal://{tmp_path / 's.log'}"
    proc = start(*SLOW, "--study", "int", "--n-trials", "200", "--workers", "2", url=url, start_new_session=True)
    seen: list[optuna.trial.FrozenTrial] = []

    def both_running() -> bool:
        seen[:] = running(url, "int")
        return {t.system_attrs[record.WORKER]["index"] for t in seen} == {0, 1}

    wait_until(both_running, 300, proc)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: every worker gets SIGINT
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, out[-3000:]
    assert "Traceback" not in out
    trials = trials_of(url, "int")
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    # a trial seen running may finish before the signal lands (a worker between two trials just stops)
    assert failed and {t.system_attrs[record.WORKER]["index"] for t in failed} <= {0, 1}, "a running trial failed"
    assert all(trials[t.number].state in (TrialState.FAIL, TrialState.COMPLETE) for t in seen)
    assert all(t.state == TrialState.COMPLETE for t in trials if t not in failed)

    assert run_cli(*SLOW, "--storage", url, "--study", "int", "--n-trials", "2") == 0
    after = trials_of(url, "int")
    assert len(after) == len(trials) + 2 and all(t.state == TrialState.COMPLETE for t in after[len(trials) :])


@pytest.mark.integration
def test_killed_journal_worker_is_failed_when_a_worker_starts(tmp_path: Path) -> None:
    url = f"journal://{tmp_path / 's.log'}"
    proc = start(*SLOW, "--study", "kill", "--n-trials", "200", url=url)
    wait_until(lambda: bool(running(url, "kill")), 300, proc)
    (victim,) = running(url, "kill")
    proc.kill()
    proc.wait()
    assert run_cli(*SLOW, "--storage", url, "--study", "kill", "--n-trials", "1") == 0
    trials = trials_of(url, "kill")
    assert trials[victim.number].state == TrialState.FAIL
    (copy,) = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert copy.state == TrialState.COMPLETE and copy.params == victim.params
    assert copy.number == len(trials) - 1, "the new worker's one trial was the retry"


def test_allow_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    base = [*FAST, "--storage", url, "--study", "ch", "--n-trials", "1"]
    assert run_cli(*base) == 0
    capsys.readouterr()
    assert run_cli(*base, "--batch-size", "16", "--teacher", "resnet32") == 2
    err = capsys.readouterr().err
    assert "batch_size: 8 -> 16" in err and "teacher: 'resnet20' -> 'resnet32'" in err and "new --study" in err
    assert "--allow-change" not in err  # fields that decide the scores: only a new study helps
    assert run_cli(*base, "--max-layers", "9") == 2
    assert "max_layers: None -> 9" in (err := capsys.readouterr().err) and "--allow-change" in err
    assert run_cli(*base, "--batch-size", "16", "--allow-change", "batch-size") == 2  # it decides every score
    assert "computed with the study's batch_size" in capsys.readouterr().err
    assert run_cli(*base, "--max-layers", "9", "--allow-change", "max-layers", "--allow-change", "n-trials") == 0
    study = optuna.load_study(study_name="ch", storage=url)
    assert study.user_attrs["diswot:config_changes"][0]["changes"] == ["max_layers: None -> 9"]
    capsys.readouterr()
    assert run_cli(*base, "--allow-change", "bogus") == 2
    assert "not a recorded field" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--workers", "0"], "--workers must be >= 1"),
        (["--grace-period", "5"], "--grace-period needs --heartbeat"),
        (["--workers", "2", "--worker-index", "1"], "--worker-index is for workers started by hand"),
    ],
)
def test_bad_worker_options_are_one_line(
    extra: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(*FAST, "--storage", f"sqlite:///{tmp_path / 's.db'}", *extra) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], captured
