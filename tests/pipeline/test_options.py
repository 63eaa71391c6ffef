"""Options declared once: the scoring options of ``search``, ``score`` and ``rank``, and the choice lists."""

from __future__ import annotations

import argparse

import pytest

from diswot.pipeline.cli._options import SCORING_OPTIONS
from diswot.pipeline.cli import build_parser
from diswot.pipeline.cli._options import config_from_args
from diswot.pipeline.config import SAMPLERS, SCORE_FIELDS, SearchConfig
from diswot.pipeline.errors import DiswotError, ScoreChangeError
from diswot.pipeline.scoring import PRECISIONS
from diswot.proxies import SEMANTIC_MODES

#: the commands that score, with what each needs besides the scoring options, and the options they leave out
SCORING_COMMANDS = {
    "search": ([], ()),
    "score": (["--arch", "ResNet[1,1,1]"], ()),
    "rank": (["--ground-truth", "gt.csv"], ("proxy",)),
}
#: a value for every scoring option that is not its default
GIVEN = {
    "space": "nb201",
    "teacher": "resnet20",
    "teacher_weights": "t.pt",
    "teacher_features": "layer4",
    "teacher_classifier": "fc",
    "teacher_image_size": "64",
    "dataset": "synthetic",
    "data_dir": "d",
    "num_classes": "7",
    "image_size": "16",
    "seed": "3",
    "batch_size": "8",
    "repeats": "2",
    "proxy": "diswot",
    "reference_size": "9",
    "init": "kaiming",
    "init_draw": "stream",
    "semantic": "class",
    "device": "cpu",
    "precision": "bf16",
}


def _subparser(command: str) -> argparse.ArgumentParser:
    sub = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    parser: argparse.ArgumentParser = sub[command]
    return parser


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions}


def test_every_scoring_option_is_in_the_test() -> None:
    assert {o.dest for o in SCORING_OPTIONS} == set(GIVEN)


@pytest.mark.parametrize("command", sorted(SCORING_COMMANDS))
def test_scoring_commands_take_the_one_declaration(command: str) -> None:
    actions = _actions(_subparser(command))
    _, leave_out = SCORING_COMMANDS[command]
    for option in SCORING_OPTIONS:
        if option.dest in leave_out:
            assert option.dest not in actions, f"{command} declares --{option.dest} itself"
            continue
        action = actions[option.dest]
        assert tuple(action.option_strings) == option.flags, (command, option.dest)
        for key in ("default", "choices", "type", "required", "help", "metavar"):
            expected = option.kwargs.get(key, False if key == "required" else None)
            assert getattr(action, key) == expected, (command, option.dest, key)


def test_search_and_rank_read_the_same_scoring_options_into_the_same_config() -> None:
    configs = {}
    for command, (extra, leave_out) in SCORING_COMMANDS.items():
        argv = [command, *extra]
        for dest, value in GIVEN.items():
            if dest not in leave_out:
                argv += [f"--{dest.replace('_', '-')}", value]
        configs[command] = config_from_args(build_parser().parse_args(argv))
    assert configs["search"] == configs["score"]
    assert configs["rank"] == SearchConfig(**{**configs["search"].__dict__, "proxy": configs["rank"].proxy})
    assert configs["search"].precision == "bf16" and configs["search"].reference_size == 9


def test_defaults_are_the_configs() -> None:
    for command, (extra, _) in SCORING_COMMANDS.items():
        parsed = config_from_args(build_parser().parse_args([command, *extra, "--space", "s0"]))
        assert parsed == SearchConfig(space="s0"), command


@pytest.mark.parametrize(
    ("dest", "values", "command_dest"),
    [
        ("precision", PRECISIONS, "precision"),
        ("semantic", SEMANTIC_MODES, "semantic"),
        ("sampler", SAMPLERS, "sampler"),
    ],
)
def test_choice_lists_are_shared_by_argparse_and_the_config(
    dest: str, values: tuple[str, ...], command_dest: str
) -> None:
    for command in ("search", "score", "rank"):
        action = _actions(_subparser(command)).get(command_dest)
        if action is not None:
            assert tuple(action.choices or ()) == values, command
    for value in values:
        SearchConfig(space="s0", **{dest: value})
    with pytest.raises(DiswotError, match=f"valid: {', '.join(values)}"):
        SearchConfig(space="s0", **{dest: "nope"})


def test_allow_change_knows_the_recorded_and_the_unrecorded_fields(caplog: pytest.LogCaptureFixture) -> None:
    from diswot.pipeline.study import UNRECORDED, mutable_fields

    assert mutable_fields(["max-layers", "max-params,--max-flops"]) == {"max_layers", "max_params", "max_flops"}
    for field in SCORE_FIELDS:  # a field that decides every score never changes in a study
        with pytest.raises(ScoreChangeError, match=f"computed with the study's {field}"):
            mutable_fields([field.replace("_", "-")])
    assert {"device", "sampler", "n_trials", "heartbeat", "pick_top"} <= UNRECORDED
    with caplog.at_level("INFO"):
        assert mutable_fields(["device"]) == set()
    assert "never recorded" in caplog.text
    with pytest.raises(DiswotError, match="can never change"):
        mutable_fields(["space"])
    with pytest.raises(DiswotError, match="not a recorded field"):
        mutable_fields(["colour"])


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_help_lists_the_registered_spaces() -> None:
    """The torch-free list the parser shows is the space registry's, in every command that takes --space."""
    from diswot.pipeline._choices import SPACES
    from diswot.spaces import list_spaces

    assert SPACES == tuple(list_spaces())
    for name, sub in _subparsers().items():
        for action in sub._actions:
            if "--space" in action.option_strings and name != "distill":  # distill: the study's
                assert all(space in (action.help or "") for space in SPACES), name


def test_every_default_in_help_is_the_one_used() -> None:
    """``(default X)`` in a help line is the option's real default, in every command."""
    import re

    shown_default = re.compile(r"(?:^|\(|; )default ([^\s;,)]+)")
    checked = 0
    for name, sub in _subparsers().items():
        for action in sub._actions:
            match = shown_default.search(action.help or "")
            if match is None or action.default in (None, argparse.SUPPRESS) or match[1].startswith("$"):
                continue
            assert str(action.default) == match[1].rstrip(":"), (name, action.option_strings, action.help)
            checked += 1
    assert checked > 40
    distill = {o: a for a in _subparsers()["distill"]._actions for o in a.option_strings}
    for flag in ("--teacher", "--dataset"):  # taken from the study: one default, the study's
        assert distill[flag].default is None and "the study's" in (distill[flag].help or ""), flag
        assert not shown_default.search((distill[flag].help or "").replace("default: the study's", "")), flag


def _sub_actions(command: str) -> dict[str, argparse.Action]:
    """The visible option of each destination (a hidden alias such as ``--confirm-repeats`` shares its
    option's destination and leaves the default to it)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices[command]._actions if a.help is not argparse.SUPPRESS}


@pytest.mark.parametrize("command", ["search", "score", "rank"])
def test_each_cli_default_is_the_dataclass_default(command: str) -> None:
    """Every option of a ``SearchConfig`` or ``WorkerOptions`` field defaults to the field's default
    (None where the field's default applies: config_from_args leaves the field out), and its help says it."""
    from dataclasses import fields

    from diswot.pipeline.config import WorkerOptions

    actions = _sub_actions(command)
    checked = 0
    for dataclass in (SearchConfig, WorkerOptions):
        for f in fields(dataclass):
            action = actions.get(f.name)
            if action is None or f.name == "study_name":
                continue
            checked += 1
            default = tuple(action.default) if isinstance(action.default, list) else action.default  # append
            assert default is None or default == f.default, (command, f.name)
            if action.default is not None and not isinstance(action.default, (bool, list)):
                assert f"{f.default}" in (action.help or ""), (command, f.name, action.help)
    assert checked >= 15
    needs, _ = SCORING_COMMANDS[command]
    args = build_parser().parse_args([command, "--space", "s0", *needs])
    assert config_from_args(args) == SearchConfig(space="s0")


@pytest.mark.parametrize("command", ["train", "distill"])
def test_the_recipe_options_help_reads_the_presets(command: str) -> None:
    """The recipe options default to the preset (None: the preset's value applies) and their help
    names each preset's value, read from ``PRESETS``."""
    from diswot.pipeline.presets import PRESETS

    actions = _sub_actions(command)
    fields = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "lr_decay")
    fields += ("kd_gamma", "kd_alpha", "kd_rho") if command == "distill" else ()
    for name in fields:
        action = actions[name]
        assert action.default is None, name
        for preset in PRESETS.values():
            assert f"{getattr(preset, name):g}" in (action.help or ""), (name, action.help)
