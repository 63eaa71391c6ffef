"""The pick over many workers and resumes, on SQLite and PostgreSQL: every pick score is kept, and the
recommendation is the best stored one, so a resume or another worker only adds evidence."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from diswot.pipeline.pick import recommended_trial, stored_picks
from diswot.storage import open_storage

from .conftest import unique

#: a small S0 search with a pick of 3 students at 2 repeats (the paper's score: no reference sample)
SEARCH = [
    *("search", "--space", "s0", "--teacher", "resnet20", "--dataset", "synthetic", "--batch-size", "8"),
    *("--image-size", "16", "--proxy", "diswot", "--no-progress", "--note-every", "0"),
    *("--pick-top", "3", "--pick-repeats", "2"),
]
RECOMMENDED = re.compile(r"recommended: trial (\d+) \(best pick score (\S+) over (\d+) repeats\)")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pick.db'}"
    pg: str = request.getfixturevalue("pg_url")
    return pg


def _process(url: str, study: str, *args: str) -> subprocess.Popen[str]:
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "DISWOT_STORAGE": url}
    return subprocess.Popen(
        [sys.executable, "-m", "diswot.pipeline.cli", *SEARCH, "--study", study, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def _recommended(out: str) -> tuple[int, float, int]:
    match = RECOMMENDED.search(out)
    assert match, out
    return int(match[1]), float(match[2]), int(match[3])


def _load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(url, must_exist=True))


def _check_recommendation(study: optuna.Study) -> float:
    """The recommended trial holds the best stored pick score; returns that score."""
    picks = stored_picks(study)
    best = recommended_trial(study)
    assert best is not None and picks
    assert picks[best.user_attrs["arch"]].score == max(p.score for p in picks.values())
    return picks[best.user_attrs["arch"]].score


@pytest.mark.integration
def test_two_workers_keep_each_others_pick_scores(url: str) -> None:
    """Two processes finishing together on one study: neither drops the other's pick scores, and each
    recommends a stored pick score no better than the study's best, which both runs' evidence made."""
    name = unique("two")
    first = _process(url, name, "--n-trials", "5")
    second = _process(url, name, "--n-trials", "7", "--worker-index", "1")
    outs = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        outs.append(out)
    study = _load(url, name)
    picks = stored_picks(study)
    best = _check_recommendation(study)
    for out in outs:
        number, score, repeats = _recommended(out)
        arch = study.trials[number].user_attrs["arch"]
        assert picks[arch].score == pytest.approx(score, rel=1e-4) and repeats == 2
        assert score <= best + 1e-4
    # a later look (show, distill) names the best of both runs' pick scores
    assert all(p.repeats == 2 for p in picks.values()) and len(picks) >= 3


@pytest.mark.integration
def test_a_resume_only_adds_pick_scores(url: str) -> None:
    name = unique("resume")
    proc = _process(url, name, "--n-trials", "6")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    before = {a: p.score for a, p in stored_picks(_load(url, name)).items()}
    best_before = _check_recommendation(_load(url, name))
    assert _recommended(out)[1] == pytest.approx(best_before, rel=1e-4)
    proc = _process(url, name, "--n-trials", "6")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    study = _load(url, name)
    after = {a: p.score for a, p in stored_picks(study).items()}
    assert {a: after[a] for a in before} == before  # every earlier pick score is kept, unchanged
    assert _check_recommendation(study) >= best_before
    show = subprocess.run(
        [sys.executable, "-m", "diswot.pipeline.cli", "show", "--study", name, "--json", "--storage", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert show.returncode == 0, show.stderr
    report = json.loads(show.stdout)
    assert {p["arch"]: p["pick_score"] for p in report["picks"]} == after
    assert report["recommended"]["pick_score"] == max(after.values())
