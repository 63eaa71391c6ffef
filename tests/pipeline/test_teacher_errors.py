"""Bad ``--teacher`` input is one line saying what was wrong and how to fix it, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from diswot.pipeline.errors import DiswotError
from diswot.pipeline.teachers import load_teacher

from ._teacher_files import write_user_teacher
from .conftest import SMALL_S0, run_cli


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the searches' default SQLite file lands there


def _one_line_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run a small search with ``args``; it exits 2 with one ``error:`` line, which is returned."""
    assert run_cli(*SMALL_S0[:3], *SMALL_S0[5:], "--n-trials", "1", "--storage", "sqlite:///e.db", *args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and lines[0].startswith("error:"), err
    return " ".join(" ".join(lines).split())


@pytest.mark.parametrize(
    ("teacher", "needle"),
    [
        (
            "torchvision:mobilenet_v3_smal",
            "unknown torchvision model 'mobilenet_v3_smal'; close matches: mobilenet_v3_small",
        ),
        ("timm:convnext_ato", "unknown timm model 'convnext_ato'; close matches: convnext_atto"),
        ("resnet21", "Did you mean resnet32, resnet20"),
        ("s0:ResNet[9,9]", "ResNet"),
        ("no_such_package_xyz:build", "cannot import 'no_such_package_xyz'"),
        ("torchvison:resnet18", "did you mean torchvision:resnet18?"),
    ],
)
def test_unknown_names(teacher: str, needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    if teacher.startswith("timm:"):
        pytest.importorskip("timm")
    assert needle in _one_line_error(capsys, "--teacher", teacher)


@pytest.mark.parametrize(
    ("factory", "needle"),
    [
        ("broken", "raised RuntimeError: no GPU here; it must accept num_classes=100 and return an nn.Module"),
        ("not_a_module", "returned int, not an nn.Module"),
        ("missing", "unknown factory in"),
        ("dynamic", "torch.fx cannot trace it (TraceError"),
    ],
)
def test_user_factories_that_fail(
    factory: str, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_user_teacher(tmp_path)
    message = _one_line_error(capsys, "--teacher", f"{path}:{factory}")
    assert needle in message
    if factory == "dynamic":  # says which overrides read it anyway
        assert "--teacher-features" in message and "--teacher-classifier" in message
    assert "Traceback" not in message


def test_bad_overrides_name_close_matches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = _one_line_error(capsys, "--teacher", "torchvision:mobilenet_v3_small", "--teacher-features", "featurs.12")
    assert "no graph node 'featurs.12'; close matches: features.12" in message
    message = _one_line_error(
        capsys, "--teacher", "torchvision:mobilenet_v3_small", "--teacher-classifier", "features.0"
    )
    assert "is a Conv2dNormActivation, not an nn.Linear" in message


def test_a_model_without_a_final_linear_is_refused_with_the_overrides_to_pass() -> None:
    with pytest.raises(
        DiswotError, match="no final nn.Linear found on the path to the logits; pass `teacher_features`"
    ):
        load_teacher("torchvision:squeezenet1_0", 10)  # its classifier is a 1x1 convolution


def test_wrong_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    assert "not a PyTorch checkpoint" in _one_line_error(
        capsys, "--teacher", "torchvision:mobilenet_v3_small", "--teacher-weights", str(garbage)
    )
    other = tmp_path / "other.pt"
    torch.save(load_teacher("resnet20", 100).network.state_dict(), other)
    message = _one_line_error(capsys, "--teacher", "torchvision:mobilenet_v3_small", "--teacher-weights", str(other))
    assert "does not fit teacher torchvision:mobilenet_v3_small" in message


def test_classes_mismatch_is_refused_for_distillation(tmp_path: Path) -> None:
    import torchvision

    path = tmp_path / "k7.pt"
    torch.save(torchvision.models.mobilenet_v3_small(weights=None, num_classes=7).state_dict(), path)
    with pytest.raises(DiswotError, match="classify 7 classes, the dataset has 10: distillation needs"):
        load_teacher("torchvision:mobilenet_v3_small", 10, weights=path, distill=True)
    with pytest.raises(DiswotError, match="classifies 7 classes, the dataset has 10"):
        load_teacher("mine", 10, module=torchvision.models.mobilenet_v3_small(num_classes=7), distill=True)


def test_missing_timm_names_the_extra(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm raises ImportError
    message = _one_line_error(capsys, "--teacher", "timm:convnext_atto")
    assert "pip install 'diswot[timm]'" in message
    assert run_cli("teachers", "--list", "timm") == 2
    assert "diswot[timm]" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        (["--teacher-features", "nosuchnode"], "--teacher-features 'nosuchnode' names no module of teacher resnet20"),
        (["--teacher-classifier", "stages.2"], "--teacher-classifier 'stages.2' is a Sequential, not an nn.Linear"),
        (["--teacher-classifier", "fcc"], "--teacher-classifier 'fcc' names no module of teacher resnet20"),
    ],
)
def test_an_override_naming_no_module_of_a_built_in_teacher_says_so(
    override: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A built-in teacher torch.fx cannot trace: the wrong name is the diagnosis, not the trace."""
    err = _one_line_error(capsys, "--teacher", "resnet20", *override)
    assert err.startswith(f"error: {needle}") or err.startswith(f"error: teacher resnet20: {needle}"), err
    assert not Path("e.db").exists()  # nothing created
