"""The commands the command line suggests, spelled so that they run as printed.

A suggestion names everything the command needs that the study does not record: the storage
(unless it is the one ``$DISWOT_STORAGE`` or the default gives), the study, a run folder, and for
``distill`` the teacher's weights (or, where the study recorded none, the ``train`` command that
makes them first).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
from typing import Any

import optuna

from diswot.storage import DEFAULT_STORAGE, STORAGE_ENV, mask_url, record

from ._workers import given_options

__all__ = ["distill_hint", "new_study_command", "show_command", "storage_words"]


def storage_words(url: str) -> list[str]:
    """``--storage URL`` unless ``url`` is what a command gets without it (``$DISWOT_STORAGE``, else
    the default); a URL with a password is named by ``$DISWOT_STORAGE`` (set it to run the command)."""
    if url == os.environ.get(STORAGE_ENV, DEFAULT_STORAGE):
        return []
    if mask_url(url) != url:
        return ["--storage", f"${STORAGE_ENV}"]
    return ["--storage", url]


def _line(words: list[str]) -> str:
    """``diswot WORDS`` quoted for a POSIX shell (``$DISWOT_STORAGE`` in double quotes, expanded)."""
    return "diswot " + " ".join(f'"{w}"' if w == f"${STORAGE_ENV}" else shlex.quote(w) for w in words)


def _slug(value: Any) -> str:
    """A study-name-friendly form of a field value (``torchvision:resnet18`` -> ``torchvision-resnet18``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(value)).strip("-") or "new"


def new_study_command(parser: argparse.ArgumentParser, args: argparse.Namespace, field: str) -> str:
    """This ``search`` command as a new study named after the changed ``field``'s value, without
    ``--allow-change``."""
    study = f"{args.study}-{_slug(getattr(args, field, None) or field)}"
    words = ["search", *given_options(parser, args, {"help", "storage", "study", "allow_change", "child"})]
    return _line([*words, *storage_words(args.storage), "--study", study])


def distill_hint(study: optuna.Study, url: str, trial: int) -> str:
    """How to distil ``trial`` of ``study``: one ``distill`` command, after a ``train`` command that
    makes the teacher's weights where the study recorded none."""
    config: dict[str, Any] = dict(study.user_attrs.get(record.CONFIG) or {})
    out = f"runs/{_slug(study.study_name)}-trial{trial}"
    words = ["distill", *storage_words(url), "--study", study.study_name, "--trial", str(trial), "--out", out]
    if config.get("teacher_weights"):
        return _line(words)
    teacher = str(config.get("teacher", "resnet110"))
    weights = f"runs/teacher-{_slug(teacher)}"
    dataset = str(config.get("dataset", "cifar100"))
    train = ["train", "--model", teacher, "--dataset", dataset, "--out", weights]
    return f"{_line(train)} && {_line([*words, '--teacher-weights', weights])}"


def show_command(url: str, study: str) -> str:
    """``diswot show`` of ``study`` in ``url``."""
    return _line(["show", *storage_words(url), "--study", study])
