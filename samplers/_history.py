"""An incremental view of one study's trials, read from its storage (the sampler's only state)."""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from optuna.storages import BaseStorage, InMemoryStorage
from optuna.trial import FrozenTrial, TrialState

__all__ = ["History", "fetcher", "params_key"]


def params_key(params: Mapping[str, Any]) -> frozenset[tuple[str, Any]]:
    """The params as a hashable key (order does not matter)."""
    return frozenset(params.items())


class History:
    """Incremental view of one study's trials, keyed by trial number.

    A finished trial is read once; each update visits only new and still-unfinished trials, so
    the cost per trial does not grow with the study. ``population`` and ``fresh`` hold the
    selection's state (:class:`~diswot.samplers._selection.BaseSelection`).
    """

    def __init__(self, identity: Callable[[Mapping[str, Any]], Hashable] | None = None) -> None:
        self.identity = identity or params_key  # params -> the student they build (duplicates share it)
        self.seen = 0  # trials numbered below this have been visited
        self.pending: dict[int, FrozenTrial] = {}  # last view of trials visited while unfinished
        self.complete: list[int] = []  # numbers of COMPLETE trials, ascending
        self.arch: dict[int, tuple[tuple[float, ...], Hashable]] = {}  # COMPLETE number -> (values, params key)
        self.keys: set[Hashable] = set()  # identities of finished trials that did not FAIL
        self.population: list[FrozenTrial] = []  # the selection's last population
        self.fresh: list[FrozenTrial] = []  # COMPLETE trials not yet offered to the selection

    def update(self, fetch: Callable[[int], FrozenTrial | None]) -> None:
        """Take in new and unfinished trials; ``fetch(number)`` is ``None`` past the last trial."""
        for number in sorted(self.pending):
            trial = fetch(number)
            if trial is None:
                raise RuntimeError(f"trial {number} of the study disappeared from the storage")
            self._visit(trial)
        while (trial := fetch(self.seen)) is not None:
            if trial.number != self.seen:  # numbers are 0..n-1 in every storage
                raise RuntimeError(f"trial numbers are not contiguous: found {trial.number} at {self.seen}")
            self.seen += 1
            self._visit(trial)

    def _visit(self, trial: FrozenTrial) -> None:
        number = trial.number
        if not trial.state.is_finished():
            self.pending[number] = trial
            return
        self.pending.pop(number, None)
        if trial.state == TrialState.FAIL:
            return
        if trial.params:
            self.keys.add(self.identity(trial.params))
        if trial.state == TrialState.COMPLETE:
            insort(self.complete, number)
            self.arch[number] = (tuple(trial.values), params_key(trial.params))
            self.fresh.append(trial)

    def unfinished_keys(self) -> set[Hashable]:
        """Identities of the params (or enqueued fixed params) of trials still running or waiting."""
        keys: set[Hashable] = set()
        for trial in self.pending.values():
            params = trial.params or trial.system_attrs.get("fixed_params")
            if params:
                keys.add(self.identity(params))
        return keys


def fetcher(storage: BaseStorage, study_id: int) -> Callable[[int], FrozenTrial | None]:
    """``fetch(number)``: the study's trial with that number, ``None`` past the last one.

    The in-memory storage is read trial by trial (copying its list of trials would cost O(n)
    per proposal); other storages cache or batch their reads, so one ``get_all_trials`` is best.
    """
    if isinstance(storage, InMemoryStorage):

        def fetch(number: int) -> FrozenTrial | None:
            try:
                return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study_id, number))
            except KeyError:
                return None

        return fetch
    trials = storage.get_all_trials(study_id, deepcopy=False)
    return lambda number: trials[number] if number < len(trials) else None
