"""Real timm and torchvision models, a user's file and a module from Python as teachers, at random
init: their features and classifier are found, the score is finite and deterministic, and a small
search completes. Weights in timm's, torchvision's and the project's layout load."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
import torch
from torch import nn

from diswot.pipeline import SearchConfig, run_search
from diswot.pipeline.errors import DiswotError
from diswot.pipeline.assembly import make_scoring
from diswot.pipeline.teachers import load_teacher

from ._teacher_files import write_user_teacher

pytest.importorskip("timm")

#: (teacher, feature rank): 4 for maps (B, C, H, W) or timm's NHWC (B, H, W, C); 3 for tokens (B, N, C)
MODELS = [
    ("timm:resnet18", 4),
    ("timm:convnext_atto", 4),
    ("timm:efficientnet_b0", 4),
    ("timm:mobilenetv3_small_100", 4),
    ("timm:vit_tiny_patch16_224", 3),
    ("torchvision:mobilenet_v3_small", 4),
    ("torchvision:efficientnet_b0", 4),
    ("torchvision:regnet_y_400mf", 4),
    ("torchvision:swin_t", 4),
]


def _config(teacher: str, **changes: object) -> SearchConfig:
    base = SearchConfig(
        space="s0",
        teacher=teacher,
        proxy="diswot",
        dataset="synthetic",
        num_classes=10,
        batch_size=4,
        pick_top=0,
        semantic="class",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _search_is_deterministic(config: SearchConfig, url: str, module: nn.Module | None = None) -> optuna.Study:
    """A 2-trial search completes with finite scores, and a rebuilt scorer gives trial 0 the same score."""
    study = run_search(config, url, n_trials=2, note_every=0, teacher=module)
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 2, [t.user_attrs.get("fail_reason") for t in study.trials]
    assert all(math.isfinite(t.values[0]) for t in done)
    again = make_scoring(config, teacher=module)
    arch = again.space.decode(done[0].user_attrs["arch"])
    assert again.scorer.score(arch).score == pytest.approx(done[0].values[0], rel=1e-6, abs=1e-9)
    return study


@pytest.mark.parametrize(("teacher", "rank"), MODELS)
def test_real_model_teacher(teacher: str, rank: int, tmp_path: Path) -> None:
    built = load_teacher(teacher, 10)
    size = built.image_size(32)
    assert size == 224  # from timm's pretrained_cfg / torchvision's weights meta
    with torch.no_grad():
        out = built.network.eval().forward_all(torch.randn(2, 3, size, size))
    assert out.features.dim() == rank and out.pooled.shape == (2, built.network.classifier.in_features)
    assert out.logits.shape == (2, 10)
    study = _search_is_deterministic(_config(teacher), f"sqlite:///{tmp_path}/s.db")
    assert study.user_attrs["diswot:config"]["teacher_image_size"] == 224


def test_token_teachers_give_tokens_and_the_classifier_s_pooled_vector() -> None:
    vit = load_teacher("timm:vit_tiny_patch16_224", 10).network.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        out = vit.forward_all(x)
        assert out.features.shape == (2, 197, 192)  # class token + 14 x 14 patches
        torch.testing.assert_close(out.pooled, out.features[:, 0])  # the class token (after the final norm)
        torch.testing.assert_close(out.logits, vit.model(x))
    swin = load_teacher("torchvision:swin_t", 10)
    assert swin.network.nodes == ("permute", "flatten")  # the map before the pool, the vector the head reads
    assert swin.input.mean == (0.485, 0.456, 0.406)


def test_mobilenet_pooled_vector_is_what_the_final_linear_reads() -> None:
    """MobileNetV3's head is pool -> Linear -> Hardswish -> Dropout -> Linear: the pooled vector is 1024 wide."""
    net = load_teacher("torchvision:mobilenet_v3_small", 10).network
    assert net.nodes == ("features.12", "classifier.2") and net.classifier.in_features == 1024


def test_user_file_and_python_module(tmp_path: Path) -> None:
    path = write_user_teacher(tmp_path)
    spec = f"{path}:build"
    built = load_teacher(spec, 10)
    assert built.image_size(32) == 32 and built.network.nodes == ("blocks.2", "flatten")
    _search_is_deterministic(_config(spec), f"sqlite:///{tmp_path}/file.db")
    import importlib.util

    loader = importlib.util.spec_from_file_location("user_teacher_for_test", path)
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    mine = module.build(10)
    before = {k: v.clone() for k, v in mine.state_dict().items()}
    study = _search_is_deterministic(_config("my-net"), f"sqlite:///{tmp_path}/py.db", mine)
    assert study.user_attrs["diswot:config"]["teacher"] == "my-net"
    assert all(torch.equal(before[k], v) for k, v in mine.state_dict().items())  # the caller's module untouched


def test_untraceable_module_is_read_with_hooks_when_named(tmp_path: Path) -> None:
    spec = f"{write_user_teacher(tmp_path)}:dynamic"
    config = _config(spec, teacher_features="blocks", teacher_classifier="head")
    built = load_teacher(spec, 10, features="blocks", classifier="head")
    with torch.no_grad():
        out = built.network.eval().forward_all(torch.randn(2, 3, 32, 32))
    assert out.features.shape == (2, 32, 16, 16) and out.pooled.shape == (2, 32)
    study = _search_is_deterministic(config, f"sqlite:///{tmp_path}/hooks.db")
    recorded = study.user_attrs["diswot:config"]
    assert (recorded["teacher_features"], recorded["teacher_classifier"]) == ("blocks", "head")


def test_overrides_pick_other_nodes() -> None:
    net = load_teacher("torchvision:mobilenet_v3_small", 10, features="features.11").network
    assert net.nodes == ("features.11.add", "classifier.2")  # a module traced through: its last node
    net = load_teacher("torchvision:mobilenet_v3_small", 10, classifier="classifier.3").network
    assert net.nodes == ("features.12", "classifier.2") and net.classifier.in_features == 1024
    with pytest.raises(DiswotError, match="does not give the module's logits"):  # not the final layer
        load_teacher("torchvision:mobilenet_v3_small", 10, classifier="classifier.0")


def test_weights_in_timm_torchvision_and_project_layouts(tmp_path: Path) -> None:
    import timm
    import torchvision

    x = torch.randn(2, 3, 224, 224)
    tm = timm.create_model("mobilenetv3_small_100", pretrained=False, num_classes=10).eval()
    torch.save({"state_dict": {f"module.{k}": v for k, v in tm.state_dict().items()}}, tmp_path / "timm.pt")
    loaded = load_teacher("timm:mobilenetv3_small_100", 10, weights=tmp_path / "timm.pt").network.eval()
    tv = torchvision.models.mobilenet_v3_small(weights=None, num_classes=10).eval()
    torch.save(tv.state_dict(), tmp_path / "tv.pt")
    loaded_tv = load_teacher("torchvision:mobilenet_v3_small", 10, weights=tmp_path / "tv.pt").network.eval()
    project = load_teacher("torchvision:mobilenet_v3_small", 10)
    torch.save({"model": project.network.state_dict(), "epoch": 3}, tmp_path / "project.pt")
    loaded_project = load_teacher("torchvision:mobilenet_v3_small", 10, weights=tmp_path / "project.pt").network
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), tm(x))
        torch.testing.assert_close(loaded_tv(x), tv(x))
        torch.testing.assert_close(loaded_project.eval()(x), project.network.eval()(x))


def test_a_classifier_for_other_classes_is_rebuilt_for_the_search(tmp_path: Path) -> None:
    import torchvision

    torch.save(torchvision.models.mobilenet_v3_small(weights=None, num_classes=7).state_dict(), tmp_path / "k7.pt")
    built = load_teacher("torchvision:mobilenet_v3_small", 10, weights=tmp_path / "k7.pt")
    assert built.classes_rebuilt and built.network.classifier.out_features == 10
    config = _config("torchvision:mobilenet_v3_small", teacher_weights=str(tmp_path / "k7.pt"))
    study = run_search(config, f"sqlite:///{tmp_path}/k7.db", n_trials=2, note_every=0)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 2
