"""Dashboard notes and ``diswot dashboard``, checked over HTTP and in headless Chromium.

The browser test saves screenshots under ``test-artifacts/`` (git-ignored) at the repository root.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from optuna_dashboard import get_note, save_note
from optuna_dashboard._note import get_note_from_system_attrs

from diswot.storage import default_artifact_dir
from diswot.pipeline.cli.distill import write_trial_results
from diswot.pipeline.notes import _save_new_trial_note, stage_rows, study_note, trial_note
from diswot.pipeline.pick import top_trials

from ..storage.conftest import unavailable, wait_for_line
from .conftest import SMALL_S0, run_cli

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1500,1100",
)


def test_stage_rows() -> None:
    header, rows = stage_rows({"stem.width": 16, "stage1.depth": 3, "stage1.width": 64, "stage2.depth": 1})
    assert header == ["stage", "width", "depth"]
    assert rows == [["stem", 16, "-"], ["stage1", 64, 3], ["stage2", "-", 1]]
    header, rows = stage_rows({"cell.1<-0": "nor_conv_3x3", "cell.2<-0": "none", "lr": 0.1})
    assert header == ["stage", "1<-0", "2<-0", "value"] and rows[0] == ["cell", "nor_conv_3x3", "none", "-"]
    assert rows[1] == ["lr", "-", "-", 0.1]


def test_trial_note_markdown() -> None:
    trial = optuna.trial.create_trial(
        params={"stage1.depth": 7, "stage2.depth": 1, "stage3.depth": 3},
        distributions={f"stage{i}.depth": optuna.distributions.IntDistribution(1, 7, step=2) for i in (1, 2, 3)},
        user_attrs={"arch": "ResNet[7,1,3]", "params": 259_890, "flops": 40_000_000, "layers": 24},
        system_attrs={"failed_trial": 4},
        value=-0.5,
    )
    note = trial_note(trial, score=-0.5)
    assert note.startswith("### ResNet[7,1,3]")
    assert "score **-0.5** · params 259.89K · FLOPs 40.00M · 24 layers" in note
    assert "Retry of trial 4" in note
    assert "| stage | depth |" in note and "| stage1 | 7 |" in note and "| stage3 | 3 |" in note


def test_trial_note_is_read_by_optuna_dashboard() -> None:
    """The O(1) trial-note writer uses optuna-dashboard's own format: its get_note reads it back."""
    study = optuna.create_study()
    trials = [study.ask() for _ in range(3)]
    long_body = "### arch\n" + "x" * 5000  # several 2045-character chunks
    for trial in trials:
        _save_new_trial_note(trial, f"{long_body} {trial.number}")
    save_note(study, "study note")
    for trial in trials:
        assert get_note(trial) == f"{long_body} {trial.number}"
    assert get_note(study) == "study note"


def test_study_note_masks_and_ranks() -> None:
    study = optuna.create_study(direction="maximize", study_name="n")
    for value, arch in ((1.0, "A"), (3.0, "B"), (2.0, "C")):
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={"arch": arch, "params": 1000, "flops": 2e6}))
    note = study_note(study, {"storage": "postgresql://u:secret@h/db", "teacher": "resnet56"}, top=2)
    assert "secret" not in note and "postgresql://u:***@h/db" in note
    assert "| teacher | resnet56 |" in note and "### Top 2 students" in note
    assert note.index("| 1 | 1 | B |") < note.index("| 2 | 2 | C |") and "| A |" not in note
    assert "3 complete" in note


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A real study: a 4-trial S0 search on SQLite with notes every 2 trials."""
    url = f"sqlite:///{tmp_path_factory.mktemp('dash') / 'study.db'}"
    name = "diswot-dashboard-check"
    args = [
        *SMALL_S0,
        "--proxy",
        "diswot",
    ]
    assert (
        run_cli(*args, "--storage", url, "--study", name, "--n-trials", "4", "--note-every", "2", "--no-progress") == 0
    )
    study = optuna.load_study(study_name=name, storage=url)
    # beside it, a multi-objective study (score against params) in the same storage
    multi = f"{name}-pareto"
    assert (
        run_cli(
            *args,
            "--storage",
            url,
            "--study",
            multi,
            "--n-trials",
            "4",
            "--objectives",
            "score,params",
            "--no-progress",
        )
        == 0
    )
    best = top_trials(study, 1)[0]
    # what diswot distill records: results and the checkpoint as an artifact, in the default folder
    checkpoint = tmp_path_factory.mktemp("run") / "checkpoint.pt"
    checkpoint.write_bytes(b"distilled student " * 100)
    artifact = write_trial_results(
        url, best, {"distill_top1": 0.5}, checkpoint=checkpoint, artifact_dir=default_artifact_dir(url)
    )
    return SimpleNamespace(
        url=url,
        name=name,
        study=study,
        best=best,
        artifact=artifact,
        checkpoint=checkpoint,
        multi=optuna.load_study(study_name=multi, storage=url),
    )


def test_search_writes_study_and_trial_notes(searched: SimpleNamespace) -> None:
    study = searched.study
    note = get_note(study)
    assert f"DisWOT search `{searched.name}`" in note and "| teacher | resnet20 |" in note
    assert "### Top 4 students" in note and searched.best.user_attrs["arch"] in note
    attrs = study._storage.get_study_system_attrs(study._study_id)
    for trial in study.trials:
        body = get_note_from_system_attrs(attrs, trial._trial_id)["body"]
        assert body.startswith(f"### {trial.user_attrs['arch']}")
        depth = trial.params["stage2.depth"]
        assert f"| stage2 | {depth} |" in body and "score **" in body


@pytest.fixture(scope="module")
def dashboard(searched: SimpleNamespace) -> Iterator[str]:
    """``diswot dashboard --port 0`` on the searched study; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "diswot.pipeline.cli", "dashboard", "--storage", searched.url, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        match = wait_for_line(proc, r"at (http://127\.0\.0\.1:\d+)/dashboard/", timeout=120)
        yield match.group(1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_dashboard_serves_the_study(dashboard: str, searched: SimpleNamespace) -> None:
    with urllib.request.urlopen(f"{dashboard}/api/studies", timeout=30) as response:
        studies = json.load(response)["study_summaries"]
    assert searched.name in [s["study_name"] for s in studies]


def test_dashboard_refuses_a_missing_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("dashboard", "--storage", f"sqlite:///{tmp_path / 'none.db'}") == 2
    assert "no SQLite database" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def _browser():  # type: ignore[no-untyped-def]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        unavailable("selenium", exc)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        unavailable("chromium and chromedriver", "not on PATH (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


@pytest.mark.integration
def test_dashboard_in_headless_chromium(dashboard: str, searched: SimpleNamespace) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    arch = searched.best.user_attrs["arch"]
    study_id = searched.study._study_id
    ARTIFACTS.mkdir(exist_ok=True)
    browser = _browser()
    try:

        def page_shows(text: str) -> bool:
            WebDriverWait(browser, 90).until(lambda b: text in b.find_element(By.TAG_NAME, "body").text)
            return True

        browser.get(f"{dashboard}/dashboard/")
        assert page_shows(searched.name)
        browser.save_screenshot(str(ARTIFACTS / "dashboard-studies.png"))
        browser.get(f"{dashboard}/dashboard/studies/{study_id}/trials?numbers={searched.best.number}")
        assert page_shows(arch)
        assert page_shows("stage1")  # the trial note's per-stage table
        browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))
        # the distilled checkpoint downloads from the trial's page (the default artifact folder is found)
        downloads = ARTIFACTS / "downloads"
        shutil.rmtree(downloads, ignore_errors=True)
        downloads.mkdir()
        browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        link = WebDriverWait(browser, 90).until(
            lambda b: b.find_element(By.CSS_SELECTOR, "a[download][href*='/artifacts/']")
        )
        assert searched.artifact in link.get_attribute("href")
        link.click()
        fetched = downloads / "checkpoint.pt"
        WebDriverWait(browser, 60).until(
            lambda b: fetched.is_file() and fetched.stat().st_size == searched.checkpoint.stat().st_size
        )
        assert fetched.read_bytes() == searched.checkpoint.read_bytes()
        # the objective is named after the proxy, not "Objective 0"
        browser.get(f"{dashboard}/dashboard/studies/{study_id}")
        assert page_shows("Best Trial")
        WebDriverWait(browser, 90).until(
            lambda b: "diswot" in b.find_element(By.TAG_NAME, "body").text.replace(searched.name, "")
        )
        assert "Objective 0" not in browser.find_element(By.TAG_NAME, "body").text
        browser.save_screenshot(str(ARTIFACTS / "dashboard-history.png"))
        browser.get(f"{dashboard}/dashboard/studies/{study_id}/note")
        assert page_shows("Top 4 students")
        browser.save_screenshot(str(ARTIFACTS / "dashboard-note.png"))
    finally:
        browser.quit()
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000


@pytest.mark.parametrize(("cost_factor", "expected"), [(0.0, 6), (1e6, 0)])
def test_study_note_is_spaced_by_its_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cost_factor: float, expected: int
) -> None:
    """During a search the study note waits NOTE_COST_FACTOR times its last write's duration."""
    from diswot.pipeline import notes

    calls: list[int] = []

    def record(study: optuna.Study, config: dict) -> None:
        calls.append(len(study.trials))
        time.sleep(0.01)  # a write of 10 ms: 1e6 x that is hours

    monkeypatch.setattr(notes, "write_study_note", record)
    monkeypatch.setattr(notes, "NOTE_MIN_SECONDS", 0.0)
    monkeypatch.setattr(notes, "NOTE_COST_FACTOR", cost_factor)
    args = [
        *SMALL_S0,
        "--proxy",
        "diswot",
    ]
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert (
        run_cli(*args, "--storage", url, "--study", "notes", "--n-trials", "6", "--note-every", "1", "--no-progress")
        == 0
    )
    assert calls[0] == 0 and calls[-1] == 6  # at the start and at the end, always
    assert len(calls) - 2 == expected  # in between: after each trial, or never when a write is costly


@pytest.mark.integration
def test_dashboard_shows_the_pareto_front(dashboard: str, searched: SimpleNamespace) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    study = searched.multi
    front = len(study.best_trials)
    ARTIFACTS.mkdir(exist_ok=True)
    browser = _browser()
    try:
        browser.get(f"{dashboard}/dashboard/studies/{study._study_id}")
        wait = WebDriverWait(browser, 90)
        wait.until(lambda b: "Pareto Front" in b.find_element(By.TAG_NAME, "body").text)
        plot = wait.until(lambda b: b.find_elements(By.ID, "graph-pareto-front"))[0]
        # plotly draws one marker per trial
        assert wait.until(lambda b: len(plot.find_elements(By.CSS_SELECTOR, "path.point")) >= len(study.trials) or None)
        browser.save_screenshot(str(ARTIFACTS / "dashboard-pareto.png"))
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "Objective X" in body and "score" in body and "params" in body  # the study's metric names
    finally:
        browser.quit()
    assert front >= 1 and (ARTIFACTS / "dashboard-pareto.png").stat().st_size > 10_000
