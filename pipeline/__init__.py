"""The DisWOT pipeline: search assembly, objective, data, teachers, distillation, ranking, the CLI.

``run_search(SearchConfig(...), "sqlite:///study.db", n_trials=30)`` runs a search from Python
(README, "A search from Python"); ``recommended_trial(study)`` is the student it recommends.
"""

from .config import SearchConfig
from .confirm import recommended_trial
from .runner import WorkerOptions, run_search

__all__ = ["SearchConfig", "WorkerOptions", "recommended_trial", "run_search"]
