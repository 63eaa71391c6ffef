"""The DisWOT pipeline: search assembly, objective, data, teachers, distillation, ranking, the CLI.

``run_search(SearchConfig(...), "sqlite:///study.db", n_trials=30)`` runs a search from Python
(README, "A search from Python"); ``recommended_trial(study)`` is the student it recommends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import SearchConfig
    from .confirm import recommended_trial
    from .runner import WorkerOptions, run_search

__all__ = ["SearchConfig", "WorkerOptions", "recommended_trial", "run_search"]

#: name -> module: imported on first use, so that ``diswot --help`` does not wait for torch
_LAZY = {
    "SearchConfig": ".config",
    "recommended_trial": ".confirm",
    "WorkerOptions": ".runner",
    "run_search": ".runner",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
