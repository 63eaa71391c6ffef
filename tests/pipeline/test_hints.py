"""Every command the command line suggests runs as printed: copied from the output and run."""

from __future__ import annotations

import shlex
from pathlib import Path

import optuna
import pytest

from .conftest import SMALL_S0, run_cli

#: a small search whose pick re-scores 2 students
SEARCH = [*SMALL_S0, "--image-size", "16", "--proxy", "diswot", "--no-progress", "--note-every", "0"]
#: appended to a suggested train or distill command: one short epoch (the command itself is as printed)
ONE_EPOCH = ["--epochs", "1", "--batch-size", "64", "--image-size", "16", "--device", "cpu"]


def _suggested(out: str, prefix: str) -> str:
    lines = [line for line in out.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, out
    return lines[0][len(prefix) :].strip()


def _run_printed(command: str, *extra: str) -> None:
    """Run each ``diswot ...`` of ``command`` (``A && B``) in this process, ``extra`` appended."""
    for part in command.split(" && "):
        words = shlex.split(part)
        assert words[0] == "diswot", command
        assert run_cli(*words[1:], *extra) == 0, part


@pytest.fixture()
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_end_of_a_search_suggests_a_distill_that_runs(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{in_tmp / 's.db'}"
    assert run_cli(*SEARCH, "--storage", url, "--study", "end", "--n-trials", "3", "--pick-top", "2") == 0
    command = _suggested(capsys.readouterr().out, "distil it:")
    assert "--storage" in command and "--teacher-weights" in command and " train " in f" {command} "
    _run_printed(command, *ONE_EPOCH)
    study = optuna.load_study(study_name="end", storage=url)
    number = int(command.split("--trial ")[1].split()[0])
    assert "distill_top1" in study.trials[number].user_attrs


def test_show_budget_suggests_a_distill_that_runs(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{in_tmp / 's.db'}"
    args = [*SEARCH, "--storage", url, "--study", "front", "--objectives", "score,params", "--n-trials", "4"]
    assert run_cli(*args) == 0
    out = capsys.readouterr().out
    show = out.split("within a budget with ")[1].split("\n")[0].strip()  # the search's own suggestion
    _run_printed(show)
    command = _suggested(capsys.readouterr().out, "distil it:")
    _run_printed(command, *ONE_EPOCH)


def test_a_recorded_teacher_weights_needs_no_train(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("train", "--model", "resnet20", "--dataset", "synthetic", "--out", "t", *ONE_EPOCH) == 0
    url = f"sqlite:///{in_tmp / 's.db'}"
    args = [*SEARCH, "--storage", url, "--study", "w", "--teacher-weights", "t", "--n-trials", "3"]
    assert run_cli(*args, "--pick-top", "0") == 0
    command = _suggested(capsys.readouterr().out, "distil it:")
    assert " train " not in f" {command} " and "--teacher-weights" not in command
    refused = [*shlex.split(command)[1:], "--out", "refused", "--teacher", "resnet32", *ONE_EPOCH]
    assert run_cli(*refused) == 2  # another teacher than the study's (its weights do not fit)
    assert not (in_tmp / "refused").exists()  # a refused distill leaves no --out folder
    _run_printed(command, *ONE_EPOCH)


@pytest.mark.parametrize(
    ("field", "changed", "study"),
    [("teacher", ["--teacher", "resnet32"], "c-resnet32"), ("proxy", ["--proxy", "synflow"], "c-synflow")],
)
def test_a_changed_score_field_is_refused_with_the_command_that_works(
    field: str, changed: list[str], study: str, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another teacher or score never mixes with the stored ones: refused, with the search of a new study."""
    url = f"sqlite:///{in_tmp / 's.db'}"
    base = [*SEARCH, "--storage", url, "--study", "c", "--n-trials", "2", "--pick-top", "0"]
    assert run_cli(*base) == 0
    before = optuna.load_study(study_name="c", storage=url)
    capsys.readouterr()
    assert run_cli(*base, *changed, "--allow-change", field) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"computed with the study's {field}" in err and "new --study" in err, err
    after = optuna.load_study(study_name="c", storage=url)
    assert len(after.trials) == len(before.trials) and after.user_attrs == before.user_attrs
    command = err.split("new --study: ")[1]
    assert f"--study {study}" in command and "--allow-change" not in command
    _run_printed(command)
    assert optuna.load_study(study_name=study, storage=url).user_attrs["diswot:config"][field] == changed[1]
