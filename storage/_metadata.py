"""The configuration a study was created with, and the refusal to resume under another one."""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

import optuna

from ._errors import ConfigMismatchError

__all__ = ["CONFIG_ATTR", "config_diff", "record_config"]

CONFIG_ATTR = "diswot:config"


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any], *, mutable: Iterable[str] = ()) -> list[str]:
    """Lines ``key: old -> new`` for every field that differs (fields in ``mutable`` ignored)."""
    skip = set(mutable)
    keys = sorted((set(old) | set(new)) - skip)
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def record_config(study: optuna.Study, config: Mapping[str, Any], *, mutable: Iterable[str] = ()) -> bool:
    """Store ``config`` on a new study, or check it against the stored one.

    Returns True when the study is resumed. Raises :class:`ConfigMismatchError` with the diff
    when the stored configuration differs outside ``mutable``.
    """
    config = json.loads(json.dumps(dict(config)))  # what storage round-trips
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        study.set_user_attr(CONFIG_ATTR, config)
        return False
    diff = config_diff(stored, config, mutable=mutable)
    if diff:
        raise ConfigMismatchError(
            f"study {study.study_name!r} was created with a different configuration ("
            + "; ".join(diff)
            + "); use the original options, or a new --study name"
        )
    return True
