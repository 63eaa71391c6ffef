"""The DisWOT pipeline: search assembly, objective, data, teachers, distillation, ranking, the CLI.

``run_search(SearchConfig(...), "sqlite:///study.db", n_trials=30)`` runs a search from Python
(README, "A search from Python").
"""

from .config import SearchConfig
from .runner import WorkerOptions, run_search

__all__ = ["SearchConfig", "WorkerOptions", "run_search"]
