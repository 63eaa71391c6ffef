"""The configuration a study was created with, and the refusal to resume under another one."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

import optuna

from . import record
from ._errors import ConfigMismatchError

__all__ = ["config_diff", "record_config"]

log = logging.getLogger(__name__)

#: study user attributes: the configuration the study was created with, and accepted changes of it


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any], *, mutable: Iterable[str] = ()) -> list[str]:
    """Lines ``key: old -> new`` for every field that differs (fields in ``mutable`` ignored)."""
    skip = set(mutable)
    keys = sorted((set(old) | set(new)) - skip)
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def record_config(
    study: optuna.Study, config: Mapping[str, Any], *, mutable: Iterable[str] = (), optional: Iterable[str] = ()
) -> bool:
    """Store ``config`` on a new study, or check it against the stored one.

    Fields named in ``mutable`` may differ: the stored record keeps the study's original values
    and each accepted change is appended to the study user attribute :data:`~.record.CHANGES`.
    Fields named in ``optional`` were added to the record later (e.g. the teacher's fingerprint):
    a stored record without one resumes as it did before; a stored one is compared.

    Returns True when the study is resumed. Raises :class:`ConfigMismatchError` with the diff
    when the stored configuration differs outside ``mutable``.
    """
    mutable = set(mutable)
    config = json.loads(json.dumps(dict(config)))  # what storage round-trips
    stored = study.user_attrs.get(record.CONFIG)
    if stored is None:
        study.set_user_attr(record.CONFIG, config)
        return False
    config = {k: v for k, v in config.items() if k in stored or k not in set(optional)}
    diff = config_diff(stored, config, mutable=mutable)
    if diff:
        raise ConfigMismatchError(
            f"study {study.study_name!r} was created with a different configuration ("
            + "; ".join(diff)
            + "); use the original options, or a new `study` name"
        )
    allowed = config_diff(stored, config)
    if allowed:
        log.warning("study %s resumes with changed %s", study.study_name, "; ".join(allowed))
        changes = list(study.user_attrs.get(record.CHANGES, []))
        changes.append({"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "changes": allowed})
        study.set_user_attr(record.CHANGES, changes)
    return True
