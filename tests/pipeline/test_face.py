"""``import diswot``: the library's face (lazy), the study handle ``diswot.Search`` and ``diswot export``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import diswot
from diswot.pipeline.config import SearchConfig

from .conftest import SMALL_CONFIG, cli_env, run_cli

FACE = {
    "DistillOptions",
    "DiswotError",
    "Search",
    "SearchConfig",
    "distill",
    "export",
    "list_proxies",
    "list_spaces",
    "list_teachers",
    "rank",
    "run_search",
    "score",
}


def test_the_face_lists_its_names_and_imports_no_torch() -> None:
    code = "import sys, diswot; print(sorted(diswot.__all__)); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120)
    names, torch_imported = done.stdout.splitlines()
    assert set(eval(names)) == FACE and torch_imported == "False", done.stderr
    assert all(getattr(diswot, name) is not None for name in FACE)
    assert "s0" in diswot.list_spaces() and "diswot" in diswot.list_proxies() and "resnet20" in diswot.list_teachers()
    with pytest.raises(AttributeError):
        diswot.no_such_name  # noqa: B018


@pytest.fixture(scope="module")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 4-trial S0 search made through the study handle, scored with the paper's formula."""
    url = f"sqlite:///{tmp_path_factory.mktemp('face') / 'study.db'}"
    config = SearchConfig(**{**SMALL_CONFIG, "proxy": "diswot"})  # type: ignore[arg-type]
    search = diswot.Search.open(config, url, study_name="face", note_every=0)
    assert len(search.run(n_trials=4, progress=False).trials) == 4
    return url


def test_search_load_reads_what_open_ran(small_study: str) -> None:
    search = diswot.Search.load(small_study, "face")
    assert search.config.proxy == "diswot" and search.config.num_classes == 10
    best = search.recommended_trial()
    assert best is not None and search.trial().number == best.number
    student = search.student()
    assert isinstance(student, torch.nn.Module) and student(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    assert search.top_rows(2)[0]["trial"] == best.number
    with pytest.raises(diswot.DiswotError, match="no Pareto front"):
        search.pareto_front()
    with pytest.raises(diswot.DiswotError, match="has no trial 99"):
        search.trial(99)


def test_score_weights_are_the_teachers_weights_of_the_terms(tmp_path: Path, small_study: str) -> None:
    """The default's weights of its terms (the two size counts sum to 1, M_s and SynFlow weigh alike),
    read from the study's stored reference sample (``diswot show`` prints them); none for the paper's formula."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    search = diswot.Search.open(
        SearchConfig(**{**SMALL_CONFIG, "reference_size": 8}), url, study_name="w", note_every=0
    )  # type: ignore[arg-type]
    search.run(n_trials=2, progress=False, pick=False)
    weights = search.score_weights()
    assert set(weights) == {"semantic", "synflow", "log_params", "log_flops"}
    assert weights["log_params"] + weights["log_flops"] == pytest.approx(1.0)
    assert weights["semantic"] == weights["synflow"] <= 0.5
    assert diswot.Search.load(url, "w").score_weights() == weights
    assert diswot.Search.load(small_study, "face").score_weights() == {}


def test_search_load_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no SQLite database"):
        diswot.Search.load(f"sqlite:///{tmp_path / 'none.db'}", "face")
    assert not list(tmp_path.iterdir())


def test_export_writes_a_program_that_gives_the_module_logits(small_study: str, tmp_path: Path) -> None:
    search = diswot.Search.load(small_study, "face")
    done = search.export(tmp_path / "out")
    program = torch.export.load(str(done.program))
    student = search.student().eval()
    for batch in (1, 5):
        x = torch.randn(batch, 3, 16, 16)
        assert torch.allclose(program.module()(x), student(x), atol=1e-4)
    state = torch.load(done.state_dict, weights_only=True)
    assert set(state) == set(student.state_dict())


def test_the_export_command(small_study: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / ("a-long-folder-name-" * 5) / "exported"  # the line is wider than any terminal
    assert run_cli("export", "--storage", small_study, "--study", "face", "--trial", "0", "--out", str(out)) == 0
    assert str(out / "student.pt2") in capsys.readouterr().out  # a path is never broken across lines
    assert {p.name for p in out.iterdir()} == {"student.pt2", "state_dict.pt", "export.json"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--study", "nope"], "no study 'nope'"),
        (["--study", "face", "--trial", "99"], "has no trial 99"),
        (["--study", "face", "--out", "EXISTING"], "exists and is not an empty folder"),
    ],
)
def test_export_refusals_are_one_line_and_leave_no_folder(
    small_study: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    out = str(existing) if "EXISTING" in args else str(tmp_path / "new")
    argv = [a for a in args if a not in ("--out", "EXISTING")]
    assert run_cli("export", "--storage", small_study, *argv, "--out", out) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists() and [p.name for p in existing.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["existing"]


def test_an_export_that_does_not_match_the_module_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from diswot.pipeline import export as export_module
    from diswot.spaces import get_space

    space = get_space("s0")
    module, other = (space.build(space.decode("ResNet[1,1,1]"), num_classes=10) for _ in range(2))
    real = export_module._program
    monkeypatch.setattr(export_module, "_program", lambda m, x: real(other.eval(), x))  # another network's program
    with pytest.raises(diswot.DiswotError, match="logits differ from the module's"):
        diswot.export(module, tmp_path / "out", image_size=16)
    assert not list(tmp_path.iterdir())
