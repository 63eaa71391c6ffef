"""The README's teacher from Python ("Teachers"), run exactly as printed."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from diswot.storage import record

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_teacher_from_python_runs_as_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    section = README.read_text().split("### Teachers\n", 1)[1].split("\n### ", 1)[0]
    blocks = [part.split("```", 1)[0] for part in section.split("```python\n")[1:]]
    code = next(block for block in blocks if "teacher=teacher" in block)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
    study = optuna.load_study(study_name="my-mobilenet", storage=f"sqlite:///{tmp_path / 'teachers.db'}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 10
    recorded = study.user_attrs[record.CONFIG]
    assert recorded["teacher"] == "my-mobilenet" and recorded["teacher_image_size"] == 224  # torchvision's own size
    assert capsys.readouterr().out.split()[-1] == recorded["teacher_fingerprint"]
