"""The recorded configuration: refused resumes show the diff; named fields may change."""

from __future__ import annotations

import optuna
import pytest

from diswot.storage import ConfigMismatchError, config_diff, record, record_config

CONFIG = {"space": "s0", "teacher": "resnet20", "seed": 0, "batch_size": 64, "max_params": None}


def test_new_then_resume() -> None:
    study = optuna.create_study()
    assert record_config(study, CONFIG) is False
    assert study.user_attrs[record.CONFIG] == CONFIG
    assert record_config(study, dict(CONFIG)) is True
    assert record.CHANGES not in study.user_attrs


def test_changed_teacher_is_refused_with_the_diff() -> None:
    study = optuna.create_study(study_name="s")
    record_config(study, CONFIG)
    with pytest.raises(ConfigMismatchError) as info:
        record_config(study, {**CONFIG, "teacher": "resnet56", "seed": 1})
    message = str(info.value)
    assert "teacher: 'resnet20' -> 'resnet56'" in message and "seed: 0 -> 1" in message
    assert "\n" not in message and "'s'" in message


def test_mutable_fields_may_change_and_are_logged() -> None:
    study = optuna.create_study()
    record_config(study, CONFIG)
    with pytest.raises(ConfigMismatchError, match="teacher"):
        record_config(study, {**CONFIG, "teacher": "resnet56", "batch_size": 32}, mutable=["batch_size"])
    assert record_config(study, {**CONFIG, "batch_size": 32}, mutable=["batch_size"]) is True
    assert study.user_attrs[record.CONFIG]["batch_size"] == 64, "the record keeps the original"
    (change,) = study.user_attrs[record.CHANGES]
    assert change["changes"] == ["batch_size: 64 -> 32"]


def test_config_diff() -> None:
    assert config_diff({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == ["b: 2 -> 3", "c: None -> 4"]
    assert config_diff({"a": 1}, {"a": 2}, mutable=["a"]) == []
