"""``diswot teachers`` and the one set of teacher options in ``search``, ``score``, ``rank`` and ``distill``."""

from __future__ import annotations

import argparse

import pytest

from diswot.pipeline.cli._options import TEACHER_OPTIONS
from diswot.pipeline.cli import build_parser
from diswot.pipeline.teachers import FORMS, TEACHERS

from .conftest import run_cli


def test_teachers_lists_the_forms_and_the_short_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("teachers") == 0
    out = capsys.readouterr().out
    for form, _ in FORMS:
        assert form in out
    for name in TEACHERS.names():
        assert name in out
    assert "diswot[timm]" in out


def test_teachers_lists_a_library_s_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("teachers", "--list", "torchvision", "--filter", "mobilenet_v3*") == 0
    assert capsys.readouterr().out.split() == ["torchvision:mobilenet_v3_large", "torchvision:mobilenet_v3_small"]


@pytest.mark.parametrize("command", ["search", "score", "rank", "distill"])
def test_every_command_takes_the_same_teacher_options(command: str) -> None:
    sub = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    parser: argparse.ArgumentParser = sub[command]
    actions = {a.dest: a for a in parser._actions}
    for option in TEACHER_OPTIONS:
        action = actions[option.dest]
        assert tuple(action.option_strings) == option.flags
        help_ = str(option.kwargs["help"])
        if command == "distill":  # one default, the study's, in place of the option's own
            help_ = help_.removesuffix(f"; default {option.kwargs.get('default')}")
            assert str(action.help).endswith("; default: the study's"), action.help
        assert str(action.help).startswith(help_)
        assert action.default == (
            None if command == "distill" else option.kwargs.get("default")
        )  # distill: the study's
