"""Opening a study that must exist, for the commands that read one (``show``, ``distill``)."""

from __future__ import annotations

import optuna

from diswot.storage import mask_url, open_storage

from ..errors import DiswotError

__all__ = ["load_existing_study"]


def load_existing_study(storage_url: str, study_name: str) -> optuna.Study:
    """Load a study, or raise a one-line error listing the studies that do exist; creates no storage."""
    storage = open_storage(storage_url, must_exist=True)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if study_name not in names:
        listed = ", ".join(names) if names else "none"
        raise DiswotError(f"no study {study_name!r} in {mask_url(storage_url)}; studies there: {listed}")
    return optuna.load_study(study_name=study_name, storage=storage)
