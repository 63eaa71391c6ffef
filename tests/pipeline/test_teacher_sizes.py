"""Each network at its own resolution: the same probe images, resized and normalised for the
teacher once per study; a candidate costs one student forward at the student's size, whatever the
teacher's. ``distill`` runs a 224 px timm teacher on 32 px student batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from torch import nn

from diswot.pipeline import SearchConfig, run_search
from diswot.pipeline.data import dataset_info, network_batches, probe_batches
from diswot.pipeline.kd import TeacherInput
from diswot.pipeline.assembly import make_scoring

from .conftest import run_cli
from .test_train import make_cifar_folder

pytest.importorskip("timm")


def test_synthetic_probe_images_are_resized_for_the_teacher() -> None:
    info = dataset_info("synthetic", image_size=32)
    batches = probe_batches(
        dataset="synthetic", data_dir=None, batch_size=4, seed=0, num_classes=10, info=info, repeats=2
    )
    kwargs: dict[str, Any] = {"dataset": "synthetic", "data_dir": None, "seed": 0, "info": info}
    assert network_batches(batches, image_size=32, mean=(0.5,) * 3, std=(0.5,) * 3, **kwargs) == batches
    big = network_batches(batches, image_size=224, **kwargs)
    assert [b.images.shape for b in big] == [torch.Size([4, 3, 224, 224])] * 2
    assert all(torch.equal(b.labels, s.labels) for b, s in zip(big, batches))
    back = torch.nn.functional.interpolate(big[0].images, size=(32, 32), mode="bilinear", antialias=True)
    assert torch.corrcoef(torch.stack([back.flatten(), batches[0].images.flatten()]))[0, 1] > 0.8


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small ImageFolder of real CIFAR-100 images (20 superclasses)."""
    return make_cifar_folder(tmp_path_factory.mktemp("teacher-sizes") / "folder", n_train=160, n_val=64)


def test_real_probe_images_are_read_again_at_the_teacher_s_size(folder: Path) -> None:
    data = folder
    info = dataset_info("imagefolder", image_size=32)
    kwargs: dict[str, Any] = {"dataset": "imagefolder", "data_dir": data, "seed": 1}
    batches = probe_batches(batch_size=8, num_classes=20, info=info, repeats=1, **kwargs)
    teacher = network_batches(batches, info=info, image_size=64, mean=(0.5,) * 3, std=(0.25,) * 3, **kwargs)
    assert teacher[0].images.shape == (8, 3, 64, 64) and torch.equal(teacher[0].labels, batches[0].labels)
    # the same images: the teacher's, un-normalised and shrunk, are the students'
    raw_t = torch.nn.functional.interpolate(
        teacher[0].images * 0.25 + 0.5, size=(32, 32), mode="bilinear", antialias=True
    )
    mean, std = torch.tensor(info.mean).reshape(1, 3, 1, 1), torch.tensor(info.std).reshape(1, 3, 1, 1)
    assert (raw_t - (batches[0].images * std + mean)).abs().mean() < 0.05


def test_a_candidate_s_cost_does_not_depend_on_the_teacher() -> None:
    """The student sees the same 32 px batches with a 32 px and a 224 px teacher: same forward, same FLOPs."""
    setups = {}
    for teacher in ("resnet20", "timm:convnext_atto"):
        config = SearchConfig(
            space="s0", teacher=teacher, proxy="diswot", dataset="synthetic", num_classes=10, batch_size=4
        )
        setups[teacher] = make_scoring(config)
    small, big = setups["resnet20"], setups["timm:convnext_atto"]
    assert big.teacher_image_size == 224 and small.teacher_image_size == 32
    assert all(torch.equal(a.images, b.images) for a, b in zip(small.scorer.batches, big.scorer.batches))
    arch = small.space.decode("ResNet[3,3,3]")
    assert small.scorer.score(arch).flops == big.scorer.score(arch).flops
    assert big.scorer.contexts[0].cache["gram"].shape == (4, 4)  # the teacher side: B x B, at any size


def test_teacher_input_renormalises_and_resizes() -> None:
    seen: list[torch.Tensor] = []

    class Probe(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x)
            return x.mean(dim=(2, 3))

    adapter = TeacherInput(
        teacher=Probe(),
        image_size=8,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        student_mean=(0.1, 0.2, 0.3),
        student_std=(0.2, 0.2, 0.2),
    )
    raw = torch.rand(2, 3, 4, 4)
    student = (raw - torch.tensor([0.1, 0.2, 0.3]).reshape(1, 3, 1, 1)) / 0.2
    adapter(student)
    expected = torch.nn.functional.interpolate((raw - 0.5) / 0.5, size=(8, 8), mode="bilinear", antialias=True)
    torch.testing.assert_close(seen[0], expected)


@pytest.fixture(scope="module")
def timm_study(tmp_path_factory: pytest.TempPathFactory, folder: Path) -> dict[str, Any]:
    """A 20-class timm teacher's weights, and a 2-trial S2-CIFAR search with it on the small ImageFolder."""
    import timm

    root = tmp_path_factory.mktemp("timm-distill")
    data = folder
    weights = root / "teacher.pt"
    torch.save(timm.create_model("mobilenetv3_small_100", num_classes=20).state_dict(), weights)
    url = f"sqlite:///{root / 'study.db'}"
    config = SearchConfig(
        space="s2-cifar",
        teacher="timm:mobilenetv3_small_100",
        teacher_weights=str(weights),
        proxy="diswot",
        dataset="imagefolder",
        data_dir=str(data),
        image_size=32,
        batch_size=8,
        max_params=300_000,
        pick_top=0,
    )
    study = run_search(config, url, n_trials=2, study_name="timm", note_every=0)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 2
    assert study.user_attrs["diswot:config"]["teacher_image_size"] == 224
    return {"root": root, "data": data, "url": url}


def _distill(study: dict[str, Any], *extra: str) -> int:
    return run_cli(
        "distill", "--storage", study["url"], "--study", "timm", "--dataset", "imagefolder", "--data-dir",
        str(study["data"]), "--epochs", "1", "--batch-size", "16", "--out", str(study["root"] / "out"), *extra,
    )  # fmt: skip


def test_distill_one_epoch_from_a_timm_teacher(timm_study: dict[str, Any]) -> None:
    assert _distill(timm_study) == 0
    study = optuna.load_study(study_name="timm", storage=timm_study["url"])
    distilled = [t for t in study.trials if "distill_top1" in t.user_attrs]
    assert len(distilled) == 1 and distilled[0].user_attrs["distill_teacher"] == "timm:mobilenetv3_small_100"


def test_distill_refuses_a_teacher_for_other_classes(
    timm_study: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    import timm

    other = timm_study["root"] / "k7.pt"
    torch.save(timm.create_model("mobilenetv3_small_100", num_classes=7).state_dict(), other)
    assert _distill(timm_study, "--teacher-weights", str(other), "--out", str(timm_study["root"] / "k7")) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "classify 7 classes, the dataset has 20: distillation needs" in err and "Traceback" not in err
