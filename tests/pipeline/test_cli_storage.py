"""Storage options of every command: reading commands create nothing, ``DISWOT_STORAGE`` is honoured."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from diswot.pipeline.cli import build_parser

from .conftest import run_cli

#: every command with --storage, with the other arguments it needs to parse
STORAGE_COMMANDS = {
    "search": ["--space", "s0"],
    "show": ["--study", "x"],
    "distill": ["--study", "x", "--out", "o"],
    "export": ["--study", "x", "--out", "o"],
    "dashboard": [],
    "storage-server": [],
}


@pytest.mark.parametrize("command", ["show", "distill"])
@pytest.mark.parametrize("url", ["sqlite:///nothere.db", "nothere.log", "journal://nothere2.log"])
def test_reading_commands_create_no_storage(
    command: str, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    extra = ["--out", "run"] if command == "distill" else []
    assert run_cli(command, "--storage", url, "--study", "s", *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and ("no SQLite database" in err or "no journal file" in err)
    assert list(tmp_path.iterdir()) == [], "nothing was created"


def test_every_storage_option_honours_diswot_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISWOT_STORAGE", "journal:///srv/x.log")
    sub = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {name for name, p in sub.items() if any(a.dest == "storage" for a in p._actions)} == set(STORAGE_COMMANDS)
    for name, extra in STORAGE_COMMANDS.items():
        assert build_parser().parse_args([name, *extra]).storage == "journal:///srv/x.log", name
        assert "$DISWOT_STORAGE" in sub[name].format_help(), name


def test_show_reads_the_study_from_diswot_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    study = optuna.create_study(storage=url, study_name="from-env", direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=1.5, user_attrs={"arch": "ResNet[1,1,1]"}))
    monkeypatch.setenv("DISWOT_STORAGE", url)
    assert run_cli("show", "--study", "from-env") == 0
    assert "ResNet[1,1,1]" in capsys.readouterr().out
