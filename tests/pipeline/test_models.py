"""One model resolver (``resolve_model``) for ``--teacher``, ``train --model`` and ``distill``: every
form gives a builder and its input, and ``diswot train`` trains the timm and torchvision forms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from diswot.pipeline.errors import DiswotError
from diswot.pipeline.models import InputSpec, resolve_model
from diswot.pipeline.training import RESULTS_NAME

from ._teacher_files import write_user_teacher
from .conftest import run_cli

NB201 = "nb201:|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.mark.parametrize(
    ("spec", "canonical", "form", "size"),
    [
        ("resnet20", "resnet20", "name", 32),
        ("s0:ResNet[1,3,5]", "s0:ResNet[1,3,5]", "space", 32),
        (NB201, NB201, "space", 32),
        ("torchvision:mobilenet_v3_small", "torchvision:mobilenet_v3_small", "torchvision", 224),
    ],
)
def test_each_form_resolves_to_a_builder_and_its_input(spec: str, canonical: str, form: str, size: int) -> None:
    source = resolve_model(spec)
    assert (source.spec, source.form, source.native_input().image_size) == (canonical, form, size)
    logits = source.build(3).eval()(torch.randn(1, 3, 32, 32))
    assert logits.shape == (1, 3)


def test_timm_user_and_module_forms() -> None:
    pytest.importorskip("timm")
    timm_source = resolve_model("timm:resnet18")
    assert timm_source.form == "timm" and timm_source.native_input() == InputSpec(
        224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    )
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    own = resolve_model(module, name="mine")
    assert own.spec == "mine" and own.form == "module" and own.build(5) is not module


def test_user_factory_form(tmp_path: Path) -> None:
    path = write_user_teacher(tmp_path)
    source = resolve_model(f"{path}:build", field="model")
    assert source.form == "user" and isinstance(source.build(4), nn.Module)
    with pytest.raises(DiswotError, match="`model` .*expected package.module:factory"):
        resolve_model("no/such:1x", field="model")


def test_unknown_short_name_lists_the_other_forms() -> None:
    with pytest.raises(DiswotError, match="Did you mean resnet32, resnet20.*Other forms: torchvision:NAME"):
        resolve_model("resnet21")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 classes x 4 images of 32 px, the same folder for training and evaluation."""
    root = tmp_path_factory.mktemp("tiny")
    generator = torch.Generator().manual_seed(0)
    for label in ("cat", "dog"):
        (root / "train" / label).mkdir(parents=True)
        for i in range(4):
            pixels = torch.randint(0, 256, (32, 32, 3), generator=generator, dtype=torch.uint8).numpy()
            Image.fromarray(pixels).save(root / "train" / label / f"{i}.png")
    return root


@pytest.mark.parametrize("model", ["timm:resnet18", "torchvision:mobilenet_v3_small"])
def test_train_trains_timm_and_torchvision_models(model: str, tiny_folder: Path, tmp_path: Path) -> None:
    if model.startswith("timm:"):
        pytest.importorskip("timm")
    out = tmp_path / "run"
    args = ["train", "--model", model, "--dataset", "imagefolder", "--data-dir", str(tiny_folder)]
    args += ["--val-dir", str(tiny_folder / "train"), "--image-size", "32", "--epochs", "1", "--batch-size", "4"]
    assert run_cli(*args, "--device", "cpu", "--workers", "0", "--out", str(out)) == 0
    results = json.loads((out / RESULTS_NAME).read_text())
    assert results["config"]["model"] == model and results["config"]["num_classes"] == 2
    assert results["final"]["epoch"] == 1 and 0.0 <= results["final"]["top1"] <= 1.0


def test_the_readme_resolver_example_runs_as_printed(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Teachers\n", 1)[1].split("\n### ", 1)[0]
    code = next(p.split("```", 1)[0] for p in section.split("```python\n")[1:] if "resolve_model" in p)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert capsys.readouterr().out.startswith("torchvision:mobilenet_v3_small InputSpec(image_size=224")
    assert isinstance(namespace["student"], nn.Module)
