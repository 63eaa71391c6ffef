"""The short teacher names: registered on their builders (``@register_teacher``), listed by pattern in
Python (``list_teachers``) and by ``diswot teachers [PATTERN]``."""

from __future__ import annotations

import inspect

import pytest

import diswot.pipeline.models as models
from diswot.pipeline.teachers import TEACHERS, FORMS, list_teachers, register_teacher, teacher_spec
from diswot.registry import Registry

from .conftest import run_cli

SHORT_NAMES = [
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "resnet8x4",
    "resnet32x4",
    "wrn-40-2",
    "resnet18",
    "resnet34",
    "resnet50",
]


def test_teachers_is_a_registry_of_specs() -> None:
    assert isinstance(TEACHERS, Registry) and TEACHERS.kind == "teacher"
    assert TEACHERS.names() == list_teachers() == SHORT_NAMES
    for name in SHORT_NAMES:
        spec = teacher_spec(name)
        assert spec.name == name and spec.description
        assert (spec.kind, spec.image_size) in {("cifar", 32), ("imagenet", 224)}
    assert teacher_spec("resnet50").kind == "imagenet" and teacher_spec("wrn-40-2").kind == "cifar"


@pytest.mark.parametrize("name", SHORT_NAMES)
def test_each_short_name_is_registered_on_its_builder(name: str) -> None:
    builder = TEACHERS.get(name).builder
    assert builder.__module__ == "diswot.pipeline.models"
    source = inspect.getsource(models)
    assert f'@register_teacher("{name}", ' in source
    assert f"\ndef {builder.__name__}(num_classes: int) -> FeatureNetwork:" in source


def test_register_teacher_refuses_a_second_name_and_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="teacher 'resnet20' is already registered"):
        register_teacher("resnet20", "cifar", "again")(TEACHERS.get("resnet20").builder)
    with pytest.raises(ValueError, match="teacher kind must be one of cifar, imagenet"):
        register_teacher("tiny", "mnist", "no such kind")
    assert list_teachers() == SHORT_NAMES


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("resnet*", [n for n in SHORT_NAMES if n.startswith("resnet")]),
        ("RESNET*X4", ["resnet8x4", "resnet32x4"]),
        ("wrn-*", ["wrn-40-2"]),
        ("resnet[1-3]?", ["resnet20", "resnet32", "resnet18", "resnet34"]),
        ("vit*", []),
    ],
)
def test_list_teachers(pattern: str, expected: list[str]) -> None:
    assert list_teachers(pattern) == expected


def test_the_command_lists_the_matching_short_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("teachers", "resnet*x4") == 0
    out = capsys.readouterr().out
    assert "resnet8x4" in out and "resnet32x4" in out
    assert "resnet56" not in out and "wrn-40-2" not in out
    assert FORMS[0][0] not in out  # the forms table is left out when a pattern is given


def test_a_pattern_that_matches_nothing_is_one_line_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("teachers", "vit*") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "no short teacher name matches 'vit*'" in err and "resnet20" in err


def test_the_pattern_filters_a_library_s_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("teachers", "--list", "torchvision", "MOBILENET_V3*") == 0
    assert capsys.readouterr().out.split() == ["torchvision:mobilenet_v3_large", "torchvision:mobilenet_v3_small"]
    assert run_cli("teachers", "--list", "torchvision", "no-such-model*") == 2
    assert "no torchvision model name matches 'no-such-model*'" in capsys.readouterr().err


def test_one_pattern_at_a_time(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("teachers", "--list", "torchvision", "resnet*", "--filter", "vgg*") == 2
    assert "give one pattern" in capsys.readouterr().err
