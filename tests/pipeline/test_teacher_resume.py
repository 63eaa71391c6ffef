"""The study records its teacher (spec and fingerprint): resuming with another one is refused with
the diff, another module under the same name too; studies made before the fingerprint resume."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import optuna
import pytest

from diswot.pipeline import SearchConfig, run_search
from diswot.storage import ConfigMismatchError, record

from ._teacher_files import write_user_teacher
from .conftest import SMALL_S0, run_cli

CONFIG = SearchConfig(
    space="s0", teacher="resnet20", proxy="diswot", dataset="synthetic", num_classes=10, batch_size=4, pick_top=0
)


def _user_module(tmp_path: Path) -> ModuleType:
    loader = importlib.util.spec_from_file_location("teacher_resume_module", write_user_teacher(tmp_path))
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


def test_another_teacher_is_refused_with_the_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    base = [*SMALL_S0[:3], *SMALL_S0[5:], "--n-trials", "2", "--proxy", "diswot", "--pick-top", "0"]
    assert run_cli(*base, "--teacher", "resnet20", "--storage", url, "--study", "r") == 0
    capsys.readouterr()
    args = (*base, "--teacher", "torchvision:mobilenet_v3_small", "--storage", url, "--study", "r")
    assert run_cli(*args) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "teacher: 'resnet20' -> 'torchvision:mobilenet_v3_small'" in err and "teacher_fingerprint: '" in err
    assert "teacher_image_size: None -> 224" in err
    # another teacher never mixes with the stored scores: a new study is the way
    assert run_cli(*args, "--allow-change", "teacher,semantic") == 2
    assert "computed with the study's teacher" in capsys.readouterr().err


def test_another_module_under_the_same_name_is_refused(tmp_path: Path) -> None:
    module = _user_module(tmp_path)
    url = f"sqlite:///{tmp_path}/m.db"
    config = SearchConfig(**{**CONFIG.__dict__, "teacher": "mine"})
    run_search(config, url, n_trials=1, note_every=0, teacher=module.build(10))
    run_search(config, url, n_trials=1, note_every=0, teacher=module.build(10))  # the same network resumes
    with pytest.raises(ConfigMismatchError, match="teacher_fingerprint: '[0-9a-f]{16}' -> '[0-9a-f]{16}'"):
        run_search(config, url, n_trials=1, note_every=0, teacher=module.wide(10))


def test_a_study_without_a_fingerprint_still_resumes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    study = run_search(CONFIG, url, n_trials=1, note_every=0)
    old = {k: v for k, v in study.user_attrs[record.CONFIG].items() if k != "teacher_fingerprint"}
    study.set_user_attr(record.CONFIG, old)  # as recorded before teachers had fingerprints
    study = run_search(CONFIG, url, n_trials=1, note_every=0)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 2
    assert "teacher_fingerprint" not in study.user_attrs[record.CONFIG]
