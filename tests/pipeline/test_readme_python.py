"""The README's "A search from Python" (``import diswot``: a search, the recommended student, scoring,
ranking, distillation and export), run exactly as printed; ``run_search`` and ``$DISWOT_STORAGE``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

import diswot

from diswot.pipeline import SearchConfig, recommended_trial, run_search
from diswot.pipeline.config import DEFAULT_PROXY
from diswot.pipeline.pick import stored_picks
from diswot.pipeline.cli._options import STORAGE_ENV
from diswot.storage import ConfigMismatchError, record

from .conftest import run_cli

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_section() -> str:
    return README.read_text().split("### A search from Python\n", 1)[1].split("\n#", 1)[0]


def readme_python_search() -> str:
    """The Python block of the README's "A search from Python" section."""
    return readme_section().split("```python\n", 1)[1].split("```", 1)[0]


def readme_teacher_command() -> list[str]:
    """The ``diswot train`` command the section trains its teacher with."""
    command = readme_section().split("With a teacher\nfrom `", 1)[1].split("`", 1)[0]
    assert command.startswith("diswot train ")
    return command.split()[1:]


#: loads the exported program in a process where diswot cannot be imported
LOAD_WITHOUT_DISWOT = """
import importlib.util, sys


class NoDiswot:  # diswot as if not installed, however it is installed (editable or a wheel)
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "diswot":
            raise ModuleNotFoundError(f"No module named {name!r}")


sys.meta_path.insert(0, NoDiswot())
try:
    importlib.util.find_spec("diswot")
    raise SystemExit("diswot is importable")
except ModuleNotFoundError:
    pass
import torch

program = torch.export.load(sys.argv[1])
print(*[tuple(program.module()(torch.randn(n, 3, 16, 16)).shape) for n in (1, 7)])
assert not [m for m in sys.modules if m.split(".")[0] == "diswot"]
"""


def test_the_readme_search_from_python_runs_as_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = readme_python_search()
    assert "diswot.Search.open(" in code and "import diswot" in code
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    assert run_cli(*readme_teacher_command()) == 0
    capsys.readouterr()
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
    study = optuna.load_study(study_name="from-python", storage=f"sqlite:///{tmp_path / 'diswot.db'}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 10
    assert (
        study.user_attrs[record.CONFIG]["space"] == "s0" and study.user_attrs[record.CONFIG]["proxy"] == DEFAULT_PROXY
    )
    best = recommended_trial(study)
    assert best is not None and stored_picks(study)  # the pick stage ran
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [str(best.number), best.user_attrs["arch"]]
    float(lines[1])  # the score of one student
    assert set(eval(lines[2])) == {"diswot-retest-balance", "params"}  # Kendall tau of each score
    assert lines[-1] == "torch.Size([5, 100])"
    assert "distill_top1" in study.trials[best.number].user_attrs  # distilled and recorded on the trial
    state = torch.load(tmp_path / "runs" / "student" / "checkpoint.pt", weights_only=True)["model"]
    student = diswot.Search.load(f"sqlite:///{tmp_path / 'diswot.db'}", "from-python").student()
    assert all(torch.equal(v, state[k]) for k, v in student.state_dict().items())  # the distilled weights
    assert json.loads((tmp_path / "runs" / "export" / "export.json").read_text())["distilled"] is True
    exported = tmp_path / "runs" / "export" / "student.pt2"
    done = subprocess.run(
        [sys.executable, "-I", "-c", LOAD_WITHOUT_DISWOT, str(exported)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(1,", "100)", "(7,", "100)"]


def test_run_search_resumes_from_storage_env_and_refuses_another_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(STORAGE_ENV, url)
    config = SearchConfig(space="s0", teacher="resnet20", dataset="synthetic", batch_size=8, proxy="diswot")
    assert len(run_search(config, n_trials=2, study_name="env", note_every=0).trials) == 2
    assert len(run_search(config, n_trials=1, study_name="env", note_every=0).trials) == 3  # resumed
    assert len(optuna.load_study(study_name="env", storage=url).trials) == 3  # in $DISWOT_STORAGE's file
    with pytest.raises(ConfigMismatchError, match="batch_size"):
        run_search(
            SearchConfig(space="s0", teacher="resnet20", dataset="synthetic", batch_size=16, proxy="diswot"),
            n_trials=1,
            study_name="env",
        )
    capped = run_search(config, n_trials=5, study_name="env", max_trials=3)
    assert len(capped.trials) == 3  # the study holds max_trials scored trials: nothing more runs
