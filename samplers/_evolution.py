"""The DisWOT evolutionary sampler: regularised evolution whose only state is the study's storage.

Paper: DisWOT (Dong et al., CVPR 2023), supplementary C.1 (Algorithm 1) and B.2 (population 20,
tournament 10, 5,000 cycles). The sampler reads the study (:mod:`._history`) and delegates to a
selection strategy (:mod:`._selection`) and a child-generation strategy (:mod:`._child_generation`),
as Optuna's NSGA-II sampler does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState


from ._candidates import Candidates, Verdicts
from ._child_generation import ChildGeneration, MutationChildGeneration
from ._history import History as _History
from ._history import fetcher
from ._realize import Constraint, SuggestFunc, is_compatible
from ._selection import BaseSelection, RegularizedSelection, SMSEMOASelection
from ._selection import _fitness as _fitness  # the tournament keys, read by the tests
from ._selection import _pareto_fitness as _pareto_fitness

__all__ = ["LINEAGE_KEY", "EvolutionSampler", "lineage"]

_logger = logging.getLogger(__name__)

#: The default trial system attribute ``{"origin": "random" | "mutation" | "fallback", "parent": number | None}``:
#: how the candidate was made and the parent's trial number (one attribute: one storage write). A study
#: may name its own (``EvolutionSampler(lineage_key=...)``), as diswot's searches do.
LINEAGE_KEY = "evolution:lineage"

# Bound on the plans of trials whose after_trial never came.
_PLAN_LIMIT = 1_000


def lineage(trial: FrozenTrial, key: str = LINEAGE_KEY) -> tuple[str | None, int | None]:
    """``(origin, parent)`` of a trial proposed by :class:`EvolutionSampler` (its ``lineage_key``);
    ``(None, None)`` otherwise."""
    record = trial.system_attrs.get(key) or {}
    return record.get("origin"), record.get("parent")


def _check_directions(study: Study) -> None:
    """Refuse a study with an objective that is neither minimised nor maximised."""
    directions = study.directions
    if any(d not in (StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE) for d in directions):
        raise ValueError(
            f"EvolutionSampler needs every objective minimised or maximised; study {study.study_name!r} "
            f"has directions {[d.name for d in directions]}: create it with direction= or directions="
        )


def _check_callables(suggest_func: object, key: object, constraint: object, child_generation: object) -> None:
    if not callable(suggest_func):
        raise TypeError(
            f"suggest_func must be the space's suggest function, f(trial), e.g. space.suggest; got {suggest_func!r}"
        )
    if key is not None and not callable(key):
        raise TypeError(f"key must be None or f(params) -> hashable; got {key!r}")
    if constraint is not None and not callable(constraint):
        raise TypeError(f"constraint must be None or f(params) -> reason | None; got {constraint!r}")
    if child_generation is not None and not callable(child_generation):
        raise TypeError(
            f"child_generation must be None or f(candidates, parents) -> Proposal; got {child_generation!r}"
        )


class EvolutionSampler(BaseSampler):
    """Evolution over a (conditional) suggest-function search space (DisWOT C.1).

    The population is read from the study's storage, so a resumed study or many workers sharing
    one need nothing else. Until ``selection.warm_up`` trials are complete each trial is a random
    candidate, repaired by shrinking mutations when it breaks the constraint; then
    ``child_generation`` proposes a child of the population that ``selection`` keeps.

    By default, a single-objective study runs regularised evolution
    (:class:`~diswot.samplers.RegularizedSelection`: the last ``population_size`` complete trials,
    random until they are complete) and a multi-objective one (e.g. DisWOT score against
    parameters) an elitist search as SMS-EMOA's (:class:`~diswot.samplers.SMSEMOASelection`: the
    ``population_size`` best by Pareto rank and hypervolume contribution, random until
    ``tournament_size`` trials are complete). Children come from
    :class:`~diswot.samplers.MutationChildGeneration`: a tournament of ``tournament_size`` members
    picks the parent, one block is mutated, the child is realized through ``suggest_func`` and
    ``constraint`` is checked, so an over-limit student is never proposed; when no valid new child
    turns up a duplicate or a random candidate is proposed (origin ``"fallback"``). Every
    direction must be set; a study whose directions the sampler cannot handle is refused from
    :meth:`sample_relative` and :meth:`sample_independent` alike.

    The candidate is chosen at the trial's first :meth:`sample_independent` (enqueued trials
    with every param fixed take none) and its origin and parent's trial number are stored in one
    trial system attribute, ``diswot:lineage`` (read it with :func:`lineage`).

    Args:
        suggest_func: The space's suggest function, ``f(trial)``, which calls ``trial.suggest_*``
            for every parameter of a candidate; it may be conditional. Parameters it does not
            suggest are sampled at random.
        constraint: ``f(params)`` returning ``None`` when the candidate is valid and within the
            limits, else the reason; called once per distinct candidate.
        population_size: ``P``, the number of complete trials that form the population.
        tournament_size: ``S``, the number of population members compared to pick a parent.
        seed: Seed of the sampler's own random number generator.
        avoid_duplicates: Reject a child whose params equal a non-failed trial's.
        key: ``f(params)``, the identity of the student the params build: candidates whose keys
            equal a trial's are duplicates (e.g. equivalent NAS-Bench-201 cells). Default: the
            params themselves.
        selection: The population and its tournament keys, in place of the default for the
            study's number of objectives (``population_size`` and ``tournament_size`` then size
            only the default).
        child_generation: ``f(candidates, parents)``, the proposal from a ready population, in
            place of the default :class:`~diswot.samplers.MutationChildGeneration` (which holds
            the attempts and the width mutations' settings). The random phase repairs candidates
            with a :class:`~diswot.samplers.MutationChildGeneration`'s settings: this one's, else
            the defaults.
        lineage_key: The trial system attribute that records each candidate's origin and parent
            (:func:`lineage` reads it).
    """

    def __init__(
        self,
        *,
        suggest_func: SuggestFunc,
        constraint: Constraint | None = None,
        population_size: int = 20,
        tournament_size: int = 10,
        seed: int | None = None,
        avoid_duplicates: bool = True,
        key: Callable[[Mapping[str, Any]], Hashable] | None = None,
        selection: BaseSelection | None = None,
        child_generation: ChildGeneration | None = None,
        lineage_key: str = LINEAGE_KEY,
    ) -> None:
        _check_callables(suggest_func, key, constraint, child_generation)
        sizes = {"population_size": population_size, "tournament_size": tournament_size}
        self._selections = (RegularizedSelection(**sizes), SMSEMOASelection(**sizes))  # [several objectives]
        if selection is not None and not isinstance(selection, BaseSelection):
            raise TypeError(f"selection must be None or a BaseSelection; got {selection!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        if not isinstance(avoid_duplicates, bool):
            raise TypeError(f"avoid_duplicates must be a bool, got {avoid_duplicates!r}")

        if not isinstance(lineage_key, str) or not lineage_key:
            raise TypeError(f"lineage_key must be a non-empty str, got {lineage_key!r}")
        self._suggest_func = suggest_func
        self._lineage_key = lineage_key
        self._student_key = key
        self._verdicts = Verdicts(constraint)
        self._selection = selection
        self._child_generation: ChildGeneration = child_generation or MutationChildGeneration()
        #: the settings of the random phase's repairs (attempts, width mutations)
        self._mutation = (
            child_generation if isinstance(child_generation, MutationChildGeneration) else MutationChildGeneration()
        )
        self._avoid_duplicates = avoid_duplicates
        self._rng = np.random.RandomState(seed)
        self._random_sampler = RandomSampler(seed=self._rng.randint(2**31 - 1))
        self._plans: dict[int, dict[str, Any]] = {}
        self._fixed: dict[int, Mapping[str, Any] | None] = {}  # trial id -> fixed params, seen in before_trial
        self._histories: dict[tuple[int, int], _History] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def reseed_rng(self) -> None:
        """Reseed the sampler's generator (and its random fallback) from fresh entropy."""
        self._rng.seed()
        self._random_sampler = RandomSampler(seed=self._rng.randint(2**31 - 1))

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        """Note the trial's enqueued fixed params (Optuna passes the trial as read at its start, so
        proposing it later needs no second read of its system attributes)."""
        with self._lock:
            while len(self._fixed) >= _PLAN_LIMIT:
                del self._fixed[next(iter(self._fixed))]
            self._fixed[trial._trial_id] = trial.system_attrs.get("fixed_params") or None

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        _check_directions(study)
        return {}

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        """The value of ``param_name`` in the trial's plan (proposed at its first call)."""
        with self._lock:
            plan = self._plans.get(trial._trial_id)
            if plan is None:
                plan = self._propose(study, trial)
                while len(self._plans) >= _PLAN_LIMIT:
                    del self._plans[next(iter(self._plans))]
                self._plans[trial._trial_id] = plan
        if param_name in plan and is_compatible(param_distribution, plan[param_name]):
            return plan[param_name]
        _logger.debug(
            "trial %d: %s=%r is not in the plan or not in %s; sampling it at random",
            trial.number,
            param_name,
            plan.get(param_name),
            param_distribution,
        )
        return self._random_sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        with self._lock:
            self._plans.pop(trial._trial_id, None)
            self._fixed.pop(trial._trial_id, None)

    # -- proposing ---------------------------------------------------------------------------

    def _propose(self, study: Study, trial: FrozenTrial) -> dict[str, Any]:
        """Choose the trial's candidate and record its parent and origin in the storage."""
        _check_directions(study)
        history = self._history(study)
        candidates = self._candidates(history, trial)
        directions = study.directions
        selection = self._selection or self._selections[len(directions) > 1]
        if len(history.complete) < selection.warm_up:
            proposal = candidates.random(self._mutation.max_attempts)
        else:
            parents = selection(history.population, history.fresh, directions)
            history.population, history.fresh = parents.trials, []
            proposal = self._child_generation(candidates, parents)
        record = {"origin": proposal.origin, "parent": proposal.parent}
        study._storage.set_trial_system_attr(trial._trial_id, self._lineage_key, record)
        return proposal.params

    def _history(self, study: Study) -> _History:
        """The study's history, brought up to date (a new one for a new study)."""
        storage = study._storage
        fetch = fetcher(storage, study._study_id)
        owner = (id(storage), study._study_id)
        history = self._histories.get(owner)
        if history is None or (history.seen and fetch(history.seen - 1) is None):  # a new study
            history = self._histories[owner] = _History(self._student_key)
        history.update(fetch)
        return history

    def _candidates(self, history: _History, trial: FrozenTrial) -> Candidates:
        """The candidates open to ``trial``: its fixed params kept, duplicates refused if asked."""
        unfinished: set[Hashable] = set()
        if self._avoid_duplicates:
            unfinished = history.unfinished_keys()
            unfinished.update(history.identity(p) for p in self._plans.values())

        def is_duplicate(params: Mapping[str, Any]) -> bool:
            if not self._avoid_duplicates:
                return False
            key = history.identity(params)
            return key in history.keys or key in unfinished

        if trial._trial_id in self._fixed:
            forced = self._fixed[trial._trial_id]
        else:  # no before_trial for this trial (a direct call): read it
            forced = trial.system_attrs.get("fixed_params") or None
        return Candidates(
            suggest_func=self._suggest_func,
            rng=self._rng,
            check=self._verdicts,
            is_duplicate=is_duplicate,
            forced=forced,
            width_factors=self._mutation.width_factors,
            width_multiple=self._mutation.width_multiple,
        )
