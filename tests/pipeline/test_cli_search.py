"""``diswot search``/``score``/``show`` end to end on SQLite, with synthetic data."""

from __future__ import annotations

import json

import optuna
import pytest

from diswot.spaces import get_space

from .conftest import run_cli, run_process

FAST = ["--dataset", "synthetic", "--batch-size", "8", "--proxy", "diswot"]


def test_search_resume_adds_trials(sqlite_url: str) -> None:
    args = ["search", "--space", "s0", "--teacher", "resnet20", *FAST, "--storage", sqlite_url, "--study", "a"]
    assert run_cli(*args, "--n-trials", "30") == 0
    study = optuna.load_study(study_name="a", storage=sqlite_url)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 30
    space = get_space("s0")
    for t in complete:
        assert space.encode(space.from_params(t.params)) == t.user_attrs["arch"]
        assert {"params", "flops", "semantic", "relation", "score", "score_seconds"} <= set(t.user_attrs)
        assert t.user_attrs["score"] == pytest.approx(t.value)
    assert run_cli(*args, "--n-trials", "10") == 0
    assert len(optuna.load_study(study_name="a", storage=sqlite_url).get_trials()) == 40


def test_resume_with_other_teacher_is_refused(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["search", "--space", "s0", *FAST, "--storage", sqlite_url, "--study", "b", "--n-trials", "2"]
    assert run_cli(*base, "--teacher", "resnet20") == 0
    capsys.readouterr()
    assert run_cli(*base, "--teacher", "resnet32") == 2
    err = capsys.readouterr().err
    assert "teacher: 'resnet20' -> 'resnet32'" in err


def test_s2_cifar_respects_param_limit(sqlite_url: str) -> None:
    args = [
        "search",
        "--space",
        "s2-cifar",
        "--teacher",
        "resnet20",
        "--dataset",
        "synthetic",
        "--batch-size",
        "4",
        "--proxy",
        "diswot",
    ]
    assert run_cli(*args, "--max-params", "1M", "--n-trials", "81", "--storage", sqlite_url, "--study", "s2") == 0
    study = optuna.load_study(study_name="s2", storage=sqlite_url)
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 81
    space = get_space("s2-cifar")
    for t in trials:
        arch = space.from_params(t.params)
        assert space.count_params(arch, 100) <= 1_000_000 and t.user_attrs["params"] <= 1_000_000


def test_show_lists_best(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        run_cli("search", "--space", "s0", "--teacher", "resnet20", *FAST, "--storage", sqlite_url, "--n-trials", "3")
        == 0
    )
    capsys.readouterr()
    assert run_cli("show", "--storage", sqlite_url, "--study", "diswot", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["students"]
    assert report["recommended"]["trial"] in {r["trial"] for r in rows}
    assert len(rows) == 3 and all(r["arch"].startswith("ResNet[") for r in rows)
    assert rows[0]["value"] >= rows[-1]["value"]


@pytest.mark.integration
def test_score_is_deterministic_across_processes() -> None:
    args = [
        "score",
        "--space",
        "s0",
        "--arch",
        "ResNet[3,3,3]",
        "--teacher",
        "resnet56",
        "--dataset",
        "synthetic",
        "--proxy",
        "diswot",
        "--json",
    ]
    first, second = run_process(*args), run_process(*args)
    assert first.returncode == 0, first.stderr
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a["score"] == b["score"] and a["terms"] == b["terms"]
    assert a["params"] == 278_324 and a["arch"] == "ResNet[3,3,3]"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["score", "--space", "s9", "--arch", "x"], "valid: s0"),
        (["score", "--space", "s0", "--arch", "ResNet[3,3,3]", "--teacher", "resnet111"], "valid: resnet20"),
        (["score", "--space", "s0", "--arch", "ResNet[3,3", "--dataset", "synthetic"], "ResNet["),
        (
            ["search", "--space", "s0", "--dataset", "synthetic", "--max-params", "1K", "--n-trials", "1"],
            "--max-params",
        ),
        (
            [
                "search",
                "--space",
                "s0",
                "--dataset",
                "synthetic",
                "--storage",
                "postgresql+psycopg2://u:secret@127.0.0.1:1/x",
            ],
            "cannot open storage",
        ),
        (
            [
                "score",
                "--space",
                "s0",
                "--arch",
                "ResNet[3,3,3]",
                "--dataset",
                "cifar100",
                "--data-dir",
                "/nonexistent/cifar",
            ],
            "--dataset synthetic",
        ),
    ],
    ids=["space", "teacher", "arch", "max-params", "storage", "dataset"],
)
def test_bad_input_is_one_clear_line(args: list[str], needle: str, tmp_path) -> None:
    result = run_process(*args, cwd=tmp_path)
    assert result.returncode != 0
    lines = [l for l in result.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert needle in lines[0]
    assert "secret" not in result.stderr + result.stdout
