"""What a new user hits first: nonsense options, --version, one-line argument errors, fast help,
fields a resumed study can never change, ``show --pareto`` on a single-objective study."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from diswot.pipeline.cli._options import Bounded
from diswot.pipeline.cli import build_parser
from diswot.pipeline.config import FIXED_FIELDS

from .conftest import SMALL_S0, cli_env, run_cli

#: what each command needs besides the option under test
REQUIRED = {
    "search": ["--space", "s0"],
    "score": ["--space", "s0", "--arch", "ResNet[1,1,1]"],
    "show": ["--study", "s"],
    "dashboard": [],
    "storage-server": [],
    "train": ["--model", "resnet20", "--out", "o"],
    "distill": ["--study", "s", "--out", "o"],
    "export": ["--study", "s", "--out", "o"],
    "rank": ["--space", "s0", "--ground-truth", "g.csv"],
}
_TRAINING = {
    "--image-size": ("7", "8"),
    "--mean": ("x", "-0.5"),
    "--std": ("0", "0.2"),
    "--epochs": ("0", "1"),
    "--batch-size": ("0", "1"),
    "--lr": ("0", "0.1"),
    "--momentum": ("-0.1", "0"),
    "--weight-decay": ("-1e-4", "0"),
    "--milestones": ("0", "1"),
    "--lr-step": ("0", "1"),
    "--lr-decay": ("0", "0.1"),
    "--seed": ("-1", "0"),
    "--workers": ("-1", "0"),
    "--log-every": ("0", "1"),
}
_SCORING = {
    "--num-classes": ("1", "2"),
    "--image-size": ("0", "8"),
    "--seed": ("-1", "0"),
    "--batch-size": ("1", "2"),
    "--repeats": ("0", "1"),
    "--reference-size": ("7", "8"),
}
#: every numeric option of every command: (a value refused at parse time, the smallest value accepted)
NUMERIC: dict[str, dict[str, tuple[str, str]]] = {
    "search": {
        **_SCORING,
        "--n-trials": ("0", "1"),
        "--timeout": ("-1", "0.5"),
        "--max-layers": ("0", "1"),
        "--population-size": ("0", "1"),
        "--tournament-size": ("0", "1"),
        "--top": ("0", "1"),
        "--pick-top": ("-1", "0"),
        "--pick-repeats": ("0", "1"),
        "--confirm-top": ("-1", "0"),  # the hidden aliases of the two, checked alike
        "--confirm-repeats": ("0", "1"),
        "--workers": ("0", "1"),
        "--worker-index": ("-1", "0"),
        "--max-trials": ("0", "1"),
        "--heartbeat": ("0", "1"),
        "--grace-period": ("0", "1"),
        "--max-retry": ("-1", "0"),
        "--note-every": ("-1", "0"),
    },
    "score": dict(_SCORING),
    "show": {"--top": ("0", "1")},
    "export": {"--trial": ("-1", "0")},
    "dashboard": {"--port": ("65536", "0")},
    "storage-server": {"--port": ("-1", "65535")},
    "train": dict(_TRAINING),
    "distill": {
        **_TRAINING,
        "--trial": ("-1", "0"),
        "--kd-gamma": ("-1", "0"),
        "--kd-alpha": ("nan", "0"),
        "--kd-rho": ("0", "1"),
    },
    "rank": {**_SCORING, "--sample": ("2", "3"), "--top-k": ("0", "1"), "--bootstrap": ("0", "1")},
    "teachers": {},
}
# the teacher's input size, in every command that runs a teacher
for _command in ("search", "score", "rank", "distill"):
    NUMERIC[_command]["--teacher-image-size"] = ("7", "8")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    choices: dict[str, argparse.ArgumentParser] = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    return choices


def _numeric_flags(parser: argparse.ArgumentParser) -> set[str]:
    return {a.option_strings[0] for a in parser._actions if a.type in (int, float) or isinstance(a.type, Bounded)}


def test_every_numeric_option_is_in_the_table() -> None:
    parsers = _subparsers()
    assert set(parsers) == set(NUMERIC)
    for command, parser in parsers.items():
        assert _numeric_flags(parser) == set(NUMERIC[command]), command
        assert not [a.dest for a in parser._actions if a.type in (int, float)], f"{command}: a numeric option unchecked"


@pytest.mark.parametrize(("command", "flag"), [(c, f) for c, flags in sorted(NUMERIC.items()) for f in sorted(flags)])
def test_numeric_option_is_checked_at_parse_time(command: str, flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    bad, good = NUMERIC[command][flag]
    nargs = 3 if flag in ("--mean", "--std") else 1
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([command, *REQUIRED[command], flag, *[bad] * nargs])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err and f"diswot {command} --help" in err, err
    build_parser().parse_args([command, *REQUIRED[command], flag, *[good] * nargs])


def test_timeout_below_zero_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(*SMALL_S0, "--storage", f"sqlite:///{tmp_path / 'x.db'}", "--timeout", "-1") == 2
    assert "--timeout must be > 0, got -1" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


def test_negative_count_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """``--max-params -5M`` (space-separated) is read as a value and refused in one line, not a usage dump."""
    assert run_cli(*SMALL_S0, "--max-params", "-5M", "--storage", "sqlite:///:memory:") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "-5M" in err and "usage" not in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("--version") == 0
    assert capsys.readouterr().out.startswith("diswot 0.")


def test_python_m_diswot_is_the_command_line() -> None:
    """``python -m diswot`` runs the same command line as the console script: its version, its
    one-line argument errors and their exit status."""
    run = [sys.executable, "-m", "diswot"]
    version = subprocess.run([*run, "--version"], capture_output=True, text=True, env=cli_env(), timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("diswot 0.")
    bad = subprocess.run(
        [*run, "search", "--space", "s0", "--nonsense"], capture_output=True, text=True, env=cli_env(), timeout=60
    )
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "diswot" in bad.stderr and "--nonsense" in bad.stderr


def test_help_is_plain_and_names_the_study_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("--help") == 0
    top = capsys.readouterr().out
    assert "``" not in top and "--version" in top
    assert run_cli("search", "--help") == 0
    assert "study name (default diswot)" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["search", "--help"], ["train", "--help"], [], ["search", "--space", "s0", "--timeout", "-1"]],
)
def test_help_and_argument_errors_do_not_import_torch(argv: list[str]) -> None:
    code = (
        "import sys\nfrom diswot.pipeline.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write('TORCH=' + str('torch' in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert "TORCH=False" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("field", "changed"),
    [("space", ["--space", "nb201"]), ("num_classes", ["--num-classes", "10"]), ("image_size", ["--image-size", "16"])],
)
def test_fixed_field_can_never_change(
    field: str, changed: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    base = [*SMALL_S0, "--proxy", "diswot", "--storage", url, "--study", "sig", "--n-trials", "2", "--pick-top", "0"]
    assert run_cli(*base) == 0
    before = optuna.load_study(study_name="sig", storage=url)
    capsys.readouterr()
    argv = [*base, *changed, "--allow-change", field.replace("_", "-")]
    assert run_cli(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{field} can never change" in err and "new --study" in err
    after = optuna.load_study(study_name="sig", storage=url)
    assert len(after.trials) == len(before.trials) == 2
    assert after.user_attrs == before.user_attrs  # no change logged, nothing recorded
    assert set(FIXED_FIELDS) == {"space", "num_classes", "image_size"}


def test_pareto_of_a_single_objective_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert run_cli(*SMALL_S0, "--proxy", "diswot", "--storage", url, "--study", "one", "--n-trials", "2") == 0
    capsys.readouterr()
    assert run_cli("show", "--storage", url, "--study", "one", "--pareto") == 2
    err = capsys.readouterr().err
    assert "has one objective" in err and "--objectives score,params" in err


def test_library_fields_become_flags_in_the_error_line() -> None:
    from diswot.pipeline.cli import _flags, build_parser, name_flags

    flags = _flags(build_parser())
    assert {"--max-params", "--teacher-weights", "--study", "--n-trials"} <= flags
    message = "`max_params` must be >= 1; `teacher_weights` or `nothing_like_a_flag`, see `study`"
    assert (
        name_flags(message, flags)
        == "--max-params must be >= 1; --teacher-weights or `nothing_like_a_flag`, see --study"
    )


def test_a_library_error_names_the_flag_on_the_command_line(tmp_path: Path) -> None:
    """``SearchConfig`` names its fields; the command line says the flags."""
    argv = [
        "search",
        "--space",
        "s0",
        "--dataset",
        "synthetic",
        "--population-size",
        "4",
        "--tournament-size",
        "8",
        "--storage",
        f"sqlite:///{tmp_path}/x.db",
    ]
    code = f"import sys\nfrom diswot.pipeline.cli import main\nsys.exit(main({argv!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120)
    assert done.returncode == 2, done.stderr
    assert "error: --tournament-size 8 cannot exceed --population-size 4" in done.stderr and "`" not in done.stderr, (
        done.stderr
    )
    assert not (tmp_path / "x.db").exists(), "a refused search creates no storage"
