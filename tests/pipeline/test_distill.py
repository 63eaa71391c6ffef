"""The whole stage on real CIFAR-100 images: ``train`` a teacher, ``search`` S0, ``distill`` the best
student; results land on the trial (user attributes + artifact). Bad teacher checkpoints: one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from diswot.pipeline.pick import recommended_trial
import pytest
from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta
import torch

from diswot.pipeline.cli._options import default_artifact_dir
from diswot.pipeline.training import CHECKPOINT_NAME, read_results
from diswot.spaces import get_space

from .conftest import run_cli, run_process
from .test_train import assert_one_line_error, make_cifar_folder


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """``diswot train`` (resnet20, 1 epoch) -> ``diswot search`` (S0, 6 trials) on one ImageFolder."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("chain")
    data = make_cifar_folder(root / "cifar100")
    teacher = root / "teacher"
    assert (
        run_cli(
            "train",
            "--model",
            "resnet20",
            "--dataset",
            "imagefolder",
            "--data-dir",
            str(data),
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--out",
            str(teacher),
        )
        == 0
    )
    url = f"sqlite:///{root / 'study.db'}"
    assert (
        run_cli(
            "search",
            "--space",
            "s0",
            "--teacher",
            "resnet20",
            "--teacher-weights",
            str(teacher / CHECKPOINT_NAME),
            "--dataset",
            "imagefolder",
            "--data-dir",
            str(data),
            "--image-size",
            "32",
            "--n-trials",
            "6",
            "--batch-size",
            "16",
            "--storage",
            url,
            "--study",
            "chain",
        )
        == 0
    )
    return {"root": root, "data": data, "teacher": teacher / CHECKPOINT_NAME, "url": url}


def test_distill_best_trial_writes_results_to_the_study(chain: dict[str, Any]) -> None:
    out = chain["root"] / "student"
    assert (
        run_cli(
            "distill",
            "--storage",
            chain["url"],
            "--study",
            "chain",
            "--dataset",
            "imagefolder",
            "--data-dir",
            str(chain["data"]),
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--out",
            str(out),
        )
        == 0
    )
    study = optuna.load_study(study_name="chain", storage=chain["url"])
    best = recommended_trial(study)  # the search's pick: its best pick score
    assert best is not None
    attrs = best.user_attrs
    assert attrs["distill_epochs"] == 2 and attrs["distill_teacher"] == "resnet20"
    assert 0 <= attrs["distill_top1"] <= attrs["distill_top5"] <= 1
    # the training loss goes down, and is logged per epoch in the results and the checkpoint
    results = read_results(out)
    losses = [r["loss"] for r in results["history"]]
    assert len(losses) == 2 and losses[1] < losses[0], losses
    assert attrs["distill_top1"] == results["history"][-1]["top1"]
    cfg = results["config"]
    assert (cfg["kd_gamma"], cfg["kd_alpha"], cfg["kd_rho"], cfg["teacher"]) == (0.1, 0.9, 4.0, "resnet20")
    assert cfg["extra"]["trial"] == best.number and cfg["model"] == f"s0:{attrs['arch']}"
    # the final checkpoint is the trial's artifact, next to the SQLite file, readable with weights_only
    (meta,) = get_all_artifact_meta(best, storage=study._storage)  # what optuna-dashboard lists
    assert meta.artifact_id == attrs["distill_artifact"] and meta.filename == CHECKPOINT_NAME
    assert default_artifact_dir(chain["url"]) == chain["root"].resolve() / "artifacts"
    fetched = chain["root"] / "fetched.pt"
    download_artifact(
        artifact_store=FileSystemArtifactStore(str(chain["root"] / "artifacts")),
        file_path=str(fetched),
        artifact_id=meta.artifact_id,
    )
    ckpt = torch.load(fetched, weights_only=True)
    assert ckpt["epoch"] == 2 and [r["loss"] for r in ckpt["history"]] == losses
    space = get_space("s0")
    student = space.build(space.decode(attrs["arch"]), num_classes=20)
    student.load_state_dict(ckpt["model"])


def test_distill_errors_are_one_line(chain: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    base = [
        "distill",
        "--storage",
        chain["url"],
        "--dataset",
        "imagefolder",
        "--data-dir",
        str(chain["data"]),
        "--epochs",
        "1",
        "--out",
        str(chain["root"] / "x"),
    ]
    for args, needle in (
        (["--study", "nope"], "no study 'nope'"),
        (["--study", "chain", "--trial", "99"], "has no trial 99"),
        (["--study", "chain", "--space", "nb201"], "are not a nb201 architecture"),
    ):
        assert run_cli(*base, *args) == 2
        err = capsys.readouterr().err
        assert needle in " ".join(err.split()) and "Traceback" not in err


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["garbage", "other-architecture"])
def test_bad_teacher_checkpoint_gives_one_line(chain: dict[str, Any], tmp_path: Path, kind: str) -> None:
    bad = tmp_path / "teacher.pt"
    if kind == "garbage":
        bad.write_bytes(b"this is not a checkpoint\n" * 20)
        needle = "not a PyTorch checkpoint"
    else:
        from diswot.pipeline.teachers import build_teacher

        torch.save({"model": build_teacher("resnet56", 20).state_dict()}, bad)  # a ResNet-56, not the study's ResNet-20
        needle = "does not fit teacher resnet20"
    proc = run_process(
        "distill",
        "--storage",
        chain["url"],
        "--study",
        "chain",
        "--teacher-weights",
        str(bad),
        "--dataset",
        "imagefolder",
        "--data-dir",
        str(chain["data"]),
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "s"),
    )
    assert_one_line_error(proc, needle)
    assert not (tmp_path / "s" / CHECKPOINT_NAME).exists()


def test_train_and_distill_offline_on_synthetic_data(tmp_path: Path) -> None:
    """``--dataset synthetic`` trains and distils: seeded random images with a train/val split."""
    from diswot.pipeline.data import SyntheticImages

    a, b = (
        SyntheticImages(train=True, num_classes=5, image_size=8),
        SyntheticImages(train=True, num_classes=5, image_size=8),
    )
    torch.testing.assert_close(a[3][0], b[3][0])
    assert a[3][1] == b[3][1] and not torch.equal(
        a[3][0], SyntheticImages(train=False, num_classes=5, image_size=8)[3][0]
    )
    teacher = tmp_path / "teacher"
    assert (
        run_cli(
            "train",
            "--model",
            "resnet20",
            "--dataset",
            "synthetic",
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--image-size",
            "16",
            "--out",
            str(teacher),
        )
        == 0
    )
    assert read_results(teacher)["config"]["dataset"] == "synthetic"
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert (
        run_cli(
            "search",
            "--space",
            "s0",
            "--teacher",
            "resnet20",
            "--teacher-weights",
            str(teacher),
            "--dataset",
            "synthetic",
            "--batch-size",
            "8",
            "--image-size",
            "16",
            "--n-trials",
            "2",
            "--storage",
            url,
            "--study",
            "syn",
            "--no-progress",
        )
        == 0
    )
    assert (
        run_cli(
            "distill",
            "--storage",
            url,
            "--study",
            "syn",
            "--teacher-weights",
            str(teacher),
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--out",
            str(tmp_path / "student"),
        )
        == 0
    )
    best = recommended_trial(optuna.load_study(study_name="syn", storage=url))
    assert best is not None
    assert best.user_attrs["distill_epochs"] == 1 and read_results(tmp_path / "student")["config"]["num_classes"] == 100
