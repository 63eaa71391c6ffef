"""The DisWOT pipeline: the search, its assembly and objective, data, teachers, distillation, ranking; the CLI in ``cli/``.

``run_search(SearchConfig(...), "sqlite:///study.db", n_trials=30)`` runs a search from Python
(README, "A search from Python"); ``recommended_trial(study)`` is the student it recommends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_attribute

if TYPE_CHECKING:
    from .config import SearchConfig, WorkerOptions
    from .models import create_model, resolve_model
    from .pick import recommended_trial
    from .search import run_search

__all__ = ["SearchConfig", "WorkerOptions", "create_model", "recommended_trial", "resolve_model", "run_search"]

#: name -> module: imported on first use, so that ``diswot --help`` does not wait for torch
_LAZY = {
    "SearchConfig": ".config",
    "WorkerOptions": ".config",
    "create_model": ".models",
    "recommended_trial": ".pick",
    "resolve_model": ".models",
    "run_search": ".search",
}


__getattr__ = lazy_attribute(__name__, _LAZY)
