"""The README's search from Python (``run_search``), run exactly as printed; ``run_search`` and ``$DISWOT_STORAGE``."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from diswot.pipeline import SearchConfig, recommended_trial, run_search
from diswot.pipeline.config import DEFAULT_PROXY
from diswot.pipeline.pick import stored_picks
from diswot.pipeline.cli._options import STORAGE_ENV
from diswot.storage import ConfigMismatchError, record

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_python_search() -> str:
    """The Python block of the README's "A search from Python" section."""
    section = README.read_text().split("### A search from Python\n", 1)[1].split("\n#", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_search_from_python_runs_as_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = readme_python_search()
    assert "run_search(" in code and len(code.strip().splitlines()) < 10
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
    study = optuna.load_study(study_name="from-python", storage=f"sqlite:///{tmp_path / 'diswot.db'}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 10
    assert (
        study.user_attrs[record.CONFIG]["space"] == "s0" and study.user_attrs[record.CONFIG]["proxy"] == DEFAULT_PROXY
    )
    best = recommended_trial(study)
    assert best is not None and stored_picks(study)  # the pick stage ran
    assert capsys.readouterr().out.split() == [str(best.number), best.user_attrs["arch"]]


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
