"""A storage written by the previous release (tests/data/previous-release, see tests/data/README.md):
read by ``show`` and ``Search.load`` exactly as that release read it, and resumed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import diswot
from diswot.pipeline import assembly

from .conftest import run_cli

DATA = Path(__file__).resolve().parents[1] / "data" / "previous-release"


@pytest.fixture()
def url(tmp_path: Path) -> str:
    shutil.copy(DATA / "study.db", tmp_path / "study.db")
    return f"sqlite:///{tmp_path / 'study.db'}"


def _show_json(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> Any:
    capsys.readouterr()
    assert run_cli("show", "--storage", url, *args, "--json") in (0, 1)
    return json.loads(capsys.readouterr().out)


def test_show_prints_what_the_previous_release_printed(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``show --json`` is one object now: its students carry every field of the previous release's
    rows, with the same values and order, and the pick that release stored (``diswot:confirmed``)."""
    previous = json.loads((DATA / "show.json").read_text())
    report = _show_json(capsys, url, "--study", "previous-release")
    assert [{k: row[k] for k in old} for row, old in zip(report["students"], previous)] == previous
    assert len(report["students"]) == len(previous)
    assert report["recommended"]["trial"] == previous[0]["trial"] and report["recommended"]["by"] == "pick score"
    assert report["picks"] and all(p["pick_score"] is not None for p in report["picks"])
    front = _show_json(capsys, url, "--study", "previous-release-front", "--pareto")
    assert front == json.loads((DATA / "pareto.json").read_text())
    budget = _show_json(capsys, url, "--study", "previous-release-front", "--budget", "params=200K")
    assert budget == json.loads((DATA / "budget.json").read_text())


def test_search_load_reads_the_typed_record_and_the_pick(url: str) -> None:
    search = diswot.Search.load(url, "previous-release")
    config = search.config
    assert (config.space, config.teacher, config.dataset, config.batch_size) == ("s0", "resnet20", "synthetic", 8)
    assert (config.num_classes, config.image_size, config.reference_size) == (10, 16, 8)
    assert search.record is not None and search.record.teacher_fingerprint
    shown = json.loads((DATA / "show.json").read_text())
    best = search.recommended_trial()
    assert best is not None and best.number == shown[0]["trial"]  # the previous release's pick
    student = search.student()
    assert sum(p.numel() for p in student.parameters()) == shown[0]["params"]
    assert [t.number for t in diswot.Search.load(url, "previous-release-front").pareto_front()] == [
        row["trial"] for row in json.loads((DATA / "pareto.json").read_text())
    ]


def test_the_previous_release_study_resumes(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    scored: list[int] = []
    real = assembly.build_reference
    monkeypatch.setattr(assembly, "build_reference", lambda s, a, **k: scored.append(len(a)) or real(s, a, **k))
    old = diswot.Search.load(url, "previous-release")
    recorded = dict(old.study.user_attrs)
    search = diswot.Search.open(old.config, url, study_name="previous-release", note_every=0)
    study = search.run(n_trials=2, progress=False)
    assert len(study.trials) == 8 and scored == []  # its stored reference sample, not a new one
    assert study.user_attrs == recorded  # the record is unchanged
