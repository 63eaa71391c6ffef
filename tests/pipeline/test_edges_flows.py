"""The documented flows, with the input a new user has: a small ImageFolder with a broken file, a
read-only ``--out``, a refused search, a resumed search, a study read from another folder."""

from __future__ import annotations

import json

import os
from pathlib import Path

import optuna
import pytest
from PIL import Image

from diswot.pipeline.cli._progress import steps
from diswot.pipeline.pick import top_trials
from rich.console import Console

from .conftest import SMALL_S0, run_cli

TRAIN_FAST = ["--epochs", "1", "--batch-size", "8", "--device", "cpu", "--image-size", "16"]


def _image_folder(root: Path, classes: int = 2, per_class: int = 6) -> Path:
    for split in ("train", "val"):
        for c in range(classes):
            folder = root / split / f"c{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.new("RGB", (16, 16), (40 * c, 10 * i, 90)).save(folder / f"{i}.png")
    return root


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_a_file_that_is_not_an_image_is_named_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _image_folder(tmp_path / "data")
    (data / "train" / "c0" / "bad.png").write_text("not an image")
    out = tmp_path / "run"
    argv = ["train", "--model", "resnet20", "--dataset", "imagefolder", "--data-dir", str(data), "--out", str(out)]
    assert run_cli(*argv, *TRAIN_FAST) == 2
    err = _err(capsys)
    assert "bad.png is not an image" in err and "remove or replace it" in err
    assert not (out / "checkpoint.pt").exists()
    # the probe batch of search/score names it too
    argv = ["score", "--space", "s0", "--arch", "ResNet[1,1,1]", "--dataset", "imagefolder", "--data-dir", str(data)]
    assert run_cli(*argv, "--batch-size", "13", "--proxy", "diswot", "--teacher", "resnet20") == 2
    assert "bad.png is not an image" in _err(capsys)


@pytest.mark.parametrize("where", ["proc", "file"])
def test_out_that_cannot_be_written_is_refused_first(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plain").write_text("x")
    out = "/proc/diswot-run" if where == "proc" else str(tmp_path / "plain" / "run")
    argv = ["train", "--model", "resnet20", "--dataset", "synthetic", "--out", out, *TRAIN_FAST]
    assert run_cli(*argv) == 2
    assert "cannot be written" in _err(capsys)


def test_one_class_image_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _image_folder(tmp_path / "data", classes=1)
    argv = [
        "train",
        "--model",
        "resnet20",
        "--dataset",
        "imagefolder",
        "--data-dir",
        str(data),
        "--out",
        str(tmp_path / "r"),
    ]
    assert run_cli(*argv, *TRAIN_FAST) == 2
    assert "one class folder" in _err(capsys)
    assert not (tmp_path / "r").exists()  # a refused command leaves no --out folder
    argv = ["score", "--space", "s0", "--arch", "ResNet[1,1,1]", "--dataset", "imagefolder", "--data-dir", str(data)]
    assert run_cli(*argv, "--batch-size", "4", "--proxy", "diswot") == 2
    assert "one class folder" in _err(capsys)


def test_image_folder_errors_offer_no_download(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "score",
        "--space",
        "s0",
        "--arch",
        "ResNet[1,1,1]",
        "--dataset",
        "imagefolder",
        "--data-dir",
        str(tmp_path / "none"),
    ]
    assert run_cli(*argv) == 2
    err = _err(capsys)
    assert "download" not in err and "class folders" in err


def test_small_image_folder_says_which_batch_size_works(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _image_folder(tmp_path / "data", classes=3, per_class=12)
    argv = [
        *SMALL_S0[:5],
        "--dataset",
        "imagefolder",
        "--data-dir",
        str(data),
        "--storage",
        f"sqlite:///{tmp_path / 's.db'}",
    ]
    assert run_cli(*argv, "--batch-size", "64") == 2
    assert "has 36 training images" in (err := _err(capsys)) and "use --batch-size 36 or less" in err


@pytest.mark.parametrize(
    "bad",
    [
        ["--teacher", "resnet21"],
        ["--max-params", "1K"],
        ["--dataset", "imagefolder", "--data-dir", "missing"],
        ["--dataset", "imagefolder", "--data-dir", "empty"],
        ["--dataset", "cifar100", "--data-dir", "c100"],
    ],
)
def test_a_refused_search_creates_nothing(
    bad: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision

    def offline(self: torchvision.datasets.CIFAR10) -> None:  # as torchvision does: the folder first, then the fetch
        Path(self.root).mkdir(parents=True, exist_ok=True)
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", offline)
    (tmp_path / "empty").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert run_cli(*SMALL_S0, *bad, "--storage", "sqlite:///study.db") == 2
    finally:
        os.chdir(cwd)
    _err(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_resumed_search_says_the_reference_is_reused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*SMALL_S0, "--storage", f"sqlite:///{tmp_path / 's.db'}", "--n-trials", "1", "--reference-size", "8"]
    argv += ["--pick-top", "0", "--no-progress"]
    assert run_cli(*argv) == 0
    err = " ".join(capsys.readouterr().err.split())  # progress goes to stderr
    assert "scored once for this new study" in err and "reference sample: 8/8 done" in err
    assert run_cli(*argv) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "reused: scored when the study was created" in err and "reference sample: 0/" not in err


def test_progress_lines_in_a_log(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    with log.open("w") as f:
        console = Console(file=f, force_terminal=False, width=100)
        with steps(console, "stage", 3, every=0.0) as advance:
            for _ in range(3):
                advance()
    lines = log.read_text().splitlines()
    assert lines[0] == "stage: 0/3" and lines[1].startswith("stage: 1/3") and lines[-1].startswith("stage: 3/3 done")


def test_teacher_weights_are_recorded_absolute(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        argv = ["train", "--model", "resnet20", "--dataset", "synthetic", "--out", "runs/teacher", *TRAIN_FAST]
        assert run_cli(*argv) == 0
        search = [*SMALL_S0, "--proxy", "diswot", "--teacher-weights", "runs/teacher", "--n-trials", "2"]
        assert run_cli(*search, "--storage", "sqlite:///s.db", "--pick-top", "0") == 0
    finally:
        os.chdir(cwd)
    study = optuna.load_study(study_name="diswot", storage=f"sqlite:///{tmp_path / 's.db'}")
    assert study.user_attrs["diswot:config"]["teacher_weights"] == str(tmp_path / "runs" / "teacher")
    (tmp_path / "runs" / "teacher" / "checkpoint.pt").unlink()
    capsys.readouterr()
    argv = ["distill", "--storage", f"sqlite:///{tmp_path / 's.db'}", "--study", "diswot", "--out", str(tmp_path / "d")]
    assert run_cli(*argv, "--dataset", "synthetic", *TRAIN_FAST) == 2
    err = _err(capsys)
    assert "the study's recorded teacher_weights" in err and str(tmp_path / "runs" / "teacher") in err


def _study(
    rows: list[tuple[str, float]], confirmed: dict[str, float] | None = None, distilled: bool = False
) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for arch, value in rows:
        attrs = {"arch": arch, "params": 123456, "flops": 2.5e7}
        if distilled:
            attrs.update(distill_top1=0.6543, distill_epochs=240)
        trial = optuna.trial.create_trial(value=value, user_attrs=attrs)
        study.add_trial(trial)
    if confirmed:  # as studies made before kept their pick scores
        study._storage.set_study_system_attr(study._study_id, "diswot:confirmed", {"repeats": 4, "scores": confirmed})
    return study


def test_top_lists_distinct_students_in_the_pick_order() -> None:
    study = _study(
        [("ResNet[3,3,7]", 5.0), ("ResNet[1,1,1]", 4.0), ("ResNet[3,3,7]", 5.0), ("ResNet[2,2,2]", 3.0)],
        confirmed={"ResNet[3,3,7]": 1.0, "ResNet[2,2,2]": 2.0},
    )
    archs = [t.user_attrs["arch"] for t in top_trials(study, 10)]
    assert archs == ["ResNet[2,2,2]", "ResNet[3,3,7]", "ResNet[1,1,1]"]  # recommended first, then confirmed, then score
    assert top_trials(study, 10)[1].number == 0  # the earliest trial of a student


def test_top_table_fits_80_columns() -> None:
    from diswot.pipeline.cli._report import print_top

    rows = [(f"ResNet[{i},{i},{i}]", -1.23456789 * i) for i in range(1, 12)]
    study = _study(rows, confirmed={"ResNet[3,3,3]": -1.5}, distilled=True)
    console = Console(width=80, record=True, force_terminal=False)
    print_top(console, study, 10)
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in text, text
    header = next(line for line in lines if "trial" in line)
    for name in ("#", "trial", "score", "pick score", "params", "distill top-1"):
        assert f" {name} " in header, header
    assert [line.split("│")[1].strip() for line in lines if line.startswith("│")][:2] == ["1", "2"], text
    assert "recommended: trial 2" in text


def test_train_and_search_write_progress_lines_in_a_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """stderr is not a terminal here (a log): the bars draw nothing, so lines come instead, on stderr;
    stdout holds the results only."""
    import diswot.pipeline.cli._training as training_cli
    import diswot.pipeline.cli.search as search_cli

    monkeypatch.setattr(training_cli, "LOG_EVERY_SECONDS", 0.0)
    monkeypatch.setattr(search_cli, "LOG_EVERY_SECONDS", 0.0)
    argv = ["train", "--model", "resnet20", "--dataset", "synthetic", "--out", str(tmp_path / "r"), *TRAIN_FAST]
    assert run_cli(*argv, "--batch-size", "256", "--log-every", "1") == 0
    out, err = capsys.readouterr()
    assert "train epoch 1/1: batch 1/4" in err and "batch 3/4" in err and "batch 1/4" not in out
    assert out.startswith("done: epoch 1, top-1")
    argv = [*SMALL_S0, "--proxy", "diswot", "--storage", f"sqlite:///{tmp_path / 's.db'}", "--n-trials", "3"]
    assert run_cli(*argv, "--pick-top", "2") == 0
    out, err = (" ".join(s.split()) for s in capsys.readouterr())
    assert "search: 1/3 trials, best" in err and "the pick: 2 students re-scored with 4 repeats: 2/2 done" in err
    assert "search: " not in out and "the pick: " not in out and "recommended: trial" in out


def test_score_says_why_it_needs_a_reference_sample(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["score", "--space", "s0", "--arch", "ResNet[1,1,1]", "--teacher", "resnet20", "--dataset", "synthetic"]
    assert run_cli(*argv, "--batch-size", "8", "--reference-size", "8") == 0
    out, err = (" ".join(s.split()) for s in capsys.readouterr())
    assert "ranks each term against a reference sample of 8 architectures" in err and "--proxy diswot" in err
    assert "reference sample: 8/8 done" in err
    assert "weight of log_params" in out and "weight of semantic" in out  # the teacher's weights of the terms
    assert run_cli(*argv, "--batch-size", "8", "--reference-size", "8", "--json") == 0
    weights = json.loads(capsys.readouterr().out)["weights"]
    assert set(weights) == {"semantic", "synflow", "log_params", "log_flops"}
    assert weights["log_params"] + weights["log_flops"] == pytest.approx(1.0)
    assert run_cli(*argv, "--batch-size", "8", "--proxy", "diswot") == 0
    out, err = capsys.readouterr()
    assert "reference sample" not in err and "weight of" not in out


def test_multi_objective_search_points_to_the_front(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*SMALL_S0, "--proxy", "diswot", "--storage", f"sqlite:///{tmp_path / 's.db'}", "--study", "mo"]
    assert run_cli(*argv, "--n-trials", "3", "--objectives", "score,params") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "no single student is best" in out and "--study mo --pareto" in out and "--budget" in out


def test_the_library_progress_writes_lines() -> None:
    """``run_search``'s progress (no rich): the start, the end, and nothing for an empty step."""
    import io

    from diswot.pipeline.progress import text_steps

    out = io.StringIO()
    steps = text_steps(out)
    with steps("reference sample", 3) as advance:
        for _ in range(3):
            advance()
    with steps("nothing", 0) as advance:
        advance()
    lines = out.getvalue().splitlines()
    assert lines[0] == "reference sample: 0/3" and lines[-1].startswith("reference sample: 3/3 done in ")
    assert len(lines) == 2


def test_no_progress_gives_lines_even_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--no-progress`` on ``train`` and ``distill``: no bar, a line every 30 s (here every batch)."""
    import io

    import diswot.pipeline.cli._training as training_cli

    monkeypatch.setattr(training_cli, "LOG_EVERY_SECONDS", 0.0)
    for bar in (True, False):
        out = io.StringIO()
        reporter = training_cli.RichReporter(Console(file=out, force_terminal=True, width=100), "train", bar=bar)
        with reporter:
            reporter.epoch_start(1, 1, 4)
            reporter.batch(2, 0.5, 0.25)
        assert reporter.progress.disable is not bar
        assert ("train epoch 1/1: batch 2/4, loss 0.5000, acc 25.0%" in out.getvalue()) is not bar


@pytest.mark.parametrize("command", ["score", "rank", "train", "distill", "search"])
def test_every_command_with_progress_takes_no_progress(command: str) -> None:
    from diswot.pipeline.cli import build_parser

    parser = build_parser()
    argv = {
        "score": ["score", "--space", "s0", "--arch", "ResNet[1,1,1]"],
        "rank": ["rank", "--space", "s0", "--ground-truth", "s0:cifar100-kd"],
        "train": ["train", "--model", "resnet20", "--out", "r"],
        "distill": ["distill", "--study", "s", "--out", "d"],
        "search": ["search", "--space", "s0"],
    }[command]
    assert parser.parse_args([*argv, "--no-progress"]).no_progress
    assert not parser.parse_args(argv).no_progress


def test_score_with_no_progress_writes_its_lines(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["score", "--space", "s0", "--arch", "ResNet[1,1,1]", "--teacher", "resnet20", "--dataset", "synthetic"]
    assert run_cli(*argv, "--batch-size", "8", "--reference-size", "8", "--no-progress") == 0
    assert "reference sample: 8/8 done" in " ".join(capsys.readouterr().err.split())
