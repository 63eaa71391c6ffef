"""Data loaders on files made from real CIFAR images, probe batches, teachers and their weights."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from diswot.pipeline.data import dataset_info, probe_batches
from diswot.pipeline.errors import DiswotError
from diswot.proxies import get_proxy
from diswot.pipeline.scoring import Scorer
from diswot.pipeline.teachers import TEACHERS, build_teacher, load_weights, teacher_spec
from diswot.spaces import get_space

CIFAR100 = Path(__file__).resolve().parents[1] / "data" / "cifar" / "cifar100-test-first916.npz"


@pytest.fixture()
def cifar100_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``cifar-100-python`` folder in torchvision's format, holding real CIFAR-100 test images.

    The files are ours, so torchvision's md5 integrity checks are the one thing patched.
    """
    z = np.load(CIFAR100)
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    images = z["images"].transpose(0, 3, 1, 2).reshape(len(z["images"]), -1)
    for name, sl in (("train", slice(0, 600)), ("test", slice(600, 916))):
        with open(root / name, "wb") as f:
            pickle.dump(
                {
                    "data": images[sl],
                    "fine_labels": z["fine_labels"][sl].tolist(),
                    "coarse_labels": z["coarse_labels"][sl].tolist(),
                },
                f,
            )
    with open(root / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)]}, f)
    monkeypatch.setattr(torchvision.datasets.CIFAR100, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: True)
    return tmp_path


def test_cifar100_probe_batch_is_real_seeded_and_normalised(cifar100_dir: Path) -> None:
    a = probe_batches(dataset="cifar100", data_dir=cifar100_dir, batch_size=32, seed=1, repeats=2, num_classes=100)
    b = probe_batches(dataset="cifar100", data_dir=cifar100_dir, batch_size=32, seed=1, repeats=2, num_classes=100)
    assert len(a) == 2 and a[0].images.shape == (32, 3, 32, 32)
    torch.testing.assert_close(a[0].images, b[0].images)
    assert not torch.equal(a[0].images, a[1].images)  # each repeat its own batch
    assert abs(float(a[0].images.mean())) < 0.5 and 0.5 < float(a[0].images.std()) < 1.5
    assert int(a[0].labels.max()) < 100


def test_missing_cifar_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", no_network)
    with pytest.raises(DiswotError, match="`data_dir`.*`dataset` synthetic"):
        probe_batches(dataset="cifar10", data_dir=tmp_path, batch_size=8, seed=0, num_classes=10)


def test_imagefolder_classes_and_normalisation(tmp_path: Path) -> None:
    from PIL import Image

    z = np.load(CIFAR100)
    for i in range(12):
        d = tmp_path / f"class{z['coarse_labels'][i] % 3}"
        d.mkdir(exist_ok=True)
        Image.fromarray(z["images"][i]).save(d / f"{i}.png")
    info = dataset_info("imagefolder", image_size=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    (batch,) = probe_batches(dataset="imagefolder", data_dir=tmp_path, batch_size=8, seed=0, num_classes=3, info=info)
    assert batch.images.shape == (8, 3, 32, 32) and set(batch.labels.tolist()) <= {0, 1, 2}
    with pytest.raises(DiswotError, match="three numbers"):
        dataset_info("imagefolder", mean=(0.5,))


def test_repeats_average_per_repeat_scores() -> None:
    space = get_space("s0")
    batches = probe_batches(
        dataset="synthetic",
        data_dir=None,
        batch_size=8,
        seed=0,
        repeats=2,
        num_classes=10,
        info=dataset_info("synthetic"),
    )
    teacher = build_teacher("resnet20", 10)
    scorer = Scorer(space=space, proxy=get_proxy("diswot"), batches=batches, teacher=teacher, num_classes=10)
    result = scorer.score(space.decode("ResNet[1,1,1]"))
    assert len(result.per_repeat) == 2 and result.per_repeat[0] != result.per_repeat[1]
    assert result.score == pytest.approx(sum(result.per_repeat) / 2)


@pytest.mark.parametrize("name", [n for n in TEACHERS.names() if n != "resnet110"])
def test_every_teacher_exposes_features_and_classifier(name: str) -> None:
    spec = teacher_spec(name)
    net = build_teacher(name, 10).eval()
    size = 32 if spec.kind == "cifar" else 64
    with torch.no_grad():
        out = net.forward_all(torch.randn(2, 3, size, size))
    assert out.features.dim() == 4 and out.features.shape[1] == net.classifier.in_features
    assert out.logits.shape == (2, 10)
    torch.testing.assert_close(out.logits, net(torch.randn(2, 3, size, size)) * 0 + out.logits)


def test_nb201_teacher_and_unknown_teacher() -> None:
    net = build_teacher(
        "nb201:|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|", 10
    )
    assert net.classifier.in_features == 64
    with pytest.raises(DiswotError, match="valid: resnet20") as info:
        teacher_spec("resnet21")
    message = str(info.value)
    assert (
        "resnet50. Did you mean" in message and "SPACE:ARCH" in message and ".;" not in message and "?;" not in message
    )


def test_torchvision_weights_load_into_wrapped_teacher(tmp_path: Path) -> None:
    tv = torchvision.models.resnet18(weights=None, num_classes=10)
    path = tmp_path / "r18.pt"
    torch.save(tv.state_dict(), path)
    net = build_teacher("resnet18", 10, weights=path)
    torch.testing.assert_close(net.classifier.weight, tv.fc.weight)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), tv.eval()(x))


def test_teacher_weights_are_a_checkpoint_or_a_run_folder(tmp_path: Path) -> None:
    """One rule for --teacher-weights in every command: a checkpoint file or a ``diswot train --out`` folder."""
    run = tmp_path / "teacher.pt"  # diswot train --out teacher.pt makes a folder of that name
    run.mkdir()
    with pytest.raises(DiswotError, match="is a folder without checkpoint.pt") as info:
        build_teacher("resnet20", 10, weights=run)
    assert "does not exist" not in str(info.value)
    teacher = build_teacher("resnet20", 10)
    torch.save({"model": teacher.state_dict(), "epoch": 1}, run / "checkpoint.pt")
    for given in (run, run / "checkpoint.pt"):
        loaded = build_teacher("resnet20", 10, weights=given)
        torch.testing.assert_close(loaded.classifier.weight, teacher.classifier.weight)
    with pytest.raises(DiswotError, match="does not exist: pass a checkpoint file or a run folder"):
        build_teacher("resnet20", 10, weights=tmp_path / "missing.pt")


def test_bad_weights_are_one_clear_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(DiswotError, match="not a PyTorch checkpoint"):
        build_teacher("resnet20", 10, weights=garbage)
    other = tmp_path / "other.pt"
    torch.save(build_teacher("resnet32", 10).state_dict(), other)
    with pytest.raises(DiswotError, match="does not fit teacher resnet20"):
        load_weights(build_teacher("resnet20", 10), other, name="teacher resnet20")


def test_vit_students_take_their_own_size_on_cifar_data(cifar100_dir: Path) -> None:
    """Each network at its own size: on CIFAR-100, ViT students see the probe images at 224 px and
    the CIFAR teacher at 32 px; a CIFAR student space keeps the dataset's 32 px."""
    from diswot.pipeline.config import SearchConfig
    from diswot.pipeline.assembly import make_scoring

    common = dict(teacher="resnet20", dataset="cifar100", data_dir=str(cifar100_dir), batch_size=4, proxy="diswot")
    vit = make_scoring(SearchConfig(space="pit-ti", **common))
    assert vit.image_size == 224 and vit.scorer.batches[0].images.shape[-2:] == (224, 224)
    assert vit.teacher_image_size == 32
    arch = vit.space.smallest()
    assert vit.scorer.score(arch).flops == vit.space.count_flops(arch, 100, 224)
    cnn = make_scoring(SearchConfig(space="s0", **common))
    assert cnn.image_size == 32 and cnn.scorer.batches[0].images.shape[-2:] == (32, 32)
