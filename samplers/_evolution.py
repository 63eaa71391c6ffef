"""The DisWOT evolutionary sampler: regularised evolution whose only state is the study's storage.

Paper: supplementary C.1 (Algorithm 1) and B.2 (population 20, tournament 10, 5,000 cycles).
"""

from __future__ import annotations

import logging
import math
import threading
from bisect import insort
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.storages import BaseStorage, InMemoryStorage
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from ._mutation import DEFAULT_WIDTH_FACTORS, mutate
from ._pareto import REFERENCE, contributions, crowding_distance, losses, normalised, pareto_ranks, survivors
from ._realize import Candidate, Constraint, SuggestFunc, _random_valid, is_compatible, realize

__all__ = ["LINEAGE_KEY", "EvolutionSampler", "lineage"]

_logger = logging.getLogger(__name__)

#: Trial system attribute ``{"origin": "random" | "mutation" | "fallback", "parent": number | None}``:
#: how the candidate was made and the parent's trial number (one attribute: one storage write).
LINEAGE_KEY = "diswot:lineage"


def lineage(trial: FrozenTrial) -> tuple[str | None, int | None]:
    """``(origin, parent)`` of a trial proposed by :class:`EvolutionSampler`; ``(None, None)`` otherwise."""
    record = trial.system_attrs.get(LINEAGE_KEY) or {}
    return record.get("origin"), record.get("parent")


# Consecutive attempts from one parent architecture that bring no new valid child before the
# parent counts as spent (all its children seem known or invalid) and leaves later tournaments.
_SPENT_LIMIT = 10
# Bounds on the memos and on plans of trials whose after_trial never came.
_MEMO_LIMIT = 1 << 16
_PLAN_LIMIT = 1_000


def _key(params: Mapping[str, Any]) -> frozenset[tuple[str, Any]]:
    return frozenset(params.items())


class _History:
    """Incremental view of one study's trials, keyed by trial number.

    A finished trial is read once; each update visits only new and still-unfinished trials, so
    the cost per trial does not grow with the study.
    """

    def __init__(self, multi: bool = False, identity: Callable[[Mapping[str, Any]], Hashable] | None = None) -> None:
        self.identity = identity or _key  # params -> the student they build (duplicates share it)
        self.multi = multi  # several objectives: keep an elite population (``fresh`` feeds it)
        self.elite: list[int] = []  # COMPLETE numbers of the multi-objective population, ascending
        self.fresh: list[int] = []  # COMPLETE numbers not yet offered to the elite
        self.seen = 0  # trials numbered below this have been visited
        self.pending: dict[int, FrozenTrial] = {}  # last view of trials visited while unfinished
        self.complete: list[int] = []  # numbers of COMPLETE trials, ascending
        self.frozen: dict[int, FrozenTrial] = {}  # COMPLETE number -> trial
        self.keys: set[Hashable] = set()  # params of finished trials that did not FAIL
        self.arch: dict[int, tuple[tuple[float, ...], Hashable]] = {}  # COMPLETE number -> (values, params key)

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
        key = _key(trial.params)
        if trial.params:
            self.keys.add(self.identity(trial.params))
        if trial.state == TrialState.COMPLETE:
            insort(self.complete, number)
            self.frozen[number] = trial
            self.arch[number] = (tuple(trial.values), key)
            if self.multi:
                self.fresh.append(number)

    def population(self, size: int, directions: Sequence[StudyDirection]) -> list[int]:
        """The multi-objective population: the ``size`` best of the last population and the trials
        completed since (``size`` at a time), by Pareto rank then hypervolume contribution
        (:func:`~diswot.samplers._pareto.survivors`)."""
        for start in range(0, len(self.fresh), size):
            candidates = sorted(set(self.elite).union(self.fresh[start : start + size]))
            points = losses([self.arch[n][0] for n in candidates], directions)
            self.elite = [candidates[i] for i in survivors(points, size)]
        self.fresh = []
        return self.elite

    def unfinished_keys(self) -> set[Hashable]:
        """Params (or enqueued fixed params) of the trials that are still running or waiting."""
        keys: set[Hashable] = set()
        for trial in self.pending.values():
            params = trial.params or trial.system_attrs.get("fixed_params")
            if params:
                keys.add(self.identity(params))
        return keys


def _fetcher(storage: BaseStorage, study_id: int) -> Callable[[int], FrozenTrial | None]:
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


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_directions(study: Study) -> None:
    """Refuse a study with an objective that is neither minimised nor maximised."""
    directions = study.directions
    if any(d not in (StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE) for d in directions):
        raise ValueError(
            f"EvolutionSampler needs every objective minimised or maximised; study {study.study_name!r} "
            f"has directions {[d.name for d in directions]}: create it with direction= or directions="
        )


def _fitness(values: Sequence[Sequence[float]], directions: Sequence[StudyDirection]) -> list[Any]:
    """Tournament keys, larger is better: the signed value of one objective; with several,
    ``(-Pareto rank, crowding distance)`` within the population (NSGA-II's crowded comparison)."""
    points = losses(values, directions)
    if len(directions) == 1:
        return [float(v) for v in -points[:, 0]]
    ranks = pareto_ranks(points)
    crowding = np.zeros(len(points))
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        crowding[members] = crowding_distance(points[members])
    return list(zip((-ranks).tolist(), crowding.tolist()))


def _pareto_fitness(values: Sequence[Sequence[float]], directions: Sequence[StudyDirection]) -> list[Any]:
    """Tournament keys of several objectives, larger is better: ``(-Pareto rank, hypervolume
    contribution to its front, crowding distance)``, the contribution in objectives normalised over
    the population with the reference point 1.1 (SMS-EMOA's measure), crowding breaking its ties."""
    ranked = _fitness(values, directions)
    points = normalised(losses(values, directions))
    ranks = np.array([-negative for negative, _ in ranked])
    share = np.zeros(len(points))
    reference = np.full(points.shape[1], REFERENCE)
    for rank in np.unique(ranks):
        members = np.flatnonzero(ranks == rank)
        share[members] = contributions(points[members], reference)
    return [(negative, s, crowding) for (negative, crowding), s in zip(ranked, share.tolist())]


class EvolutionSampler(BaseSampler):
    """Regularised evolution over a (conditional) suggest-function search space (DisWOT C.1).

    In a single-objective study the population is the last ``population_size`` COMPLETE trials of
    the study, read from its storage, so a resumed study or many workers sharing one need nothing
    else. Until the population is full each trial is a random candidate, repaired by shrinking
    mutations when it breaks the constraint. Then each attempt runs a tournament:
    ``tournament_size`` members drawn without replacement, the best is the parent, one of its
    blocks is mutated
    (:func:`~diswot.samplers._mutation.mutate`), the child is realized through ``suggest_func`` and
    ``constraint`` is checked, so an over-limit student is never proposed. Up to ``max_attempts``
    attempts look for a valid child unlike any trial of the study that did not fail; failing
    that, a valid duplicate, and as a last resort a random valid candidate, is accepted (origin
    ``"fallback"``). A parent whose last 10 children were all known or invalid counts as spent and
    is passed over in tournaments (a memo, so exhausted neighbourhoods cost little).

    In a multi-objective study (e.g. DisWOT score against parameters) the search is elitist, as
    SMS-EMOA's: the population is the ``population_size`` best complete trials of the study, whole
    Pareto fronts first and, from the front that does not fit, the members of largest hypervolume
    contribution (in objectives normalised over the candidates, reference point 1.1); each newly
    completed trial competes with the population (:meth:`_History.population`). It is random
    only until ``tournament_size`` trials are complete (a tournament needs that many), and the
    tournament compares members by Pareto rank, then by hypervolume contribution to their front
    (then crowding distance), so parents are the front members that cover most. Every direction
    must be set; a study whose directions the sampler cannot handle is refused from
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
        population_size: ``P``, the number of recent complete trials that form the population.
        tournament_size: ``S``, the number of population members compared to pick a parent.
        seed: Seed of the sampler's own random number generator.
        max_attempts: Attempts per trial at a valid, new child.
        avoid_duplicates: Reject a child whose params equal a non-failed trial's.
        width_factors: Multipliers for width mutations (paper: 0.67, 0.8, 1.25, 1.5).
        width_multiple: A mutated width is rounded to a multiple of this.
        max_width: A mutated width is at most this.
        key: ``f(params)``, the identity of the student the params build: candidates whose keys
            equal a trial's are duplicates (e.g. equivalent NAS-Bench-201 cells). Default: the
            params themselves.
    """

    def __init__(
        self,
        *,
        suggest_func: SuggestFunc,
        constraint: Constraint | None = None,
        population_size: int = 20,
        tournament_size: int = 10,
        seed: int | None = None,
        max_attempts: int = 100,
        avoid_duplicates: bool = True,
        width_factors: Sequence[float] = DEFAULT_WIDTH_FACTORS,
        width_multiple: int = 8,
        max_width: int = 2048,
        key: Callable[[Mapping[str, Any]], Hashable] | None = None,
    ) -> None:
        if not callable(suggest_func):
            raise TypeError(
                f"suggest_func must be the space's suggest function, f(trial), e.g. space.suggest; got {suggest_func!r}"
            )
        if key is not None and not callable(key):
            raise TypeError(f"key must be None or f(params) -> hashable; got {key!r}")
        if constraint is not None and not callable(constraint):
            raise TypeError(f"constraint must be None or f(params) -> reason | None; got {constraint!r}")
        _check_int("population_size", population_size, 1)
        _check_int("tournament_size", tournament_size, 1)
        if tournament_size > population_size:
            raise ValueError(
                f"tournament_size ({tournament_size}) cannot exceed population_size "
                f"({population_size}): the tournament draws members without replacement; "
                "lower tournament_size or raise population_size (paper: P=20, S=10)"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        _check_int("max_attempts", max_attempts, 1)
        if not isinstance(avoid_duplicates, bool):
            raise TypeError(f"avoid_duplicates must be a bool, got {avoid_duplicates!r}")
        factors = tuple(width_factors) if isinstance(width_factors, Sequence) else None
        if (
            not factors
            or any(isinstance(f, bool) or not isinstance(f, (int, float)) for f in factors)
            or not all(math.isfinite(f) and f > 0 and f != 1 for f in factors)
        ):
            raise ValueError(
                "width_factors must be a non-empty sequence of positive numbers other than 1, "
                f"e.g. (0.67, 0.8, 1.25, 1.5); got {width_factors!r}"
            )
        _check_int("width_multiple", width_multiple, 1)
        _check_int("max_width", max_width, width_multiple)

        self._suggest_func = suggest_func
        self._student_key = key
        self._constraint = constraint
        self._population_size = population_size
        self._tournament_size = tournament_size
        self._max_attempts = max_attempts
        self._avoid_duplicates = avoid_duplicates
        self._width_factors = factors
        self._width_multiple = width_multiple
        self._max_width = max_width
        self._rng = np.random.RandomState(seed)
        self._random_sampler = RandomSampler(seed=self._rng.randint(2**31 - 1))
        self._plans: dict[int, dict[str, Any]] = {}
        self._fixed: dict[int, Mapping[str, Any] | None] = {}  # trial id -> fixed params, seen in before_trial
        self._histories: dict[tuple[int, int], _History] = {}
        self._memo: dict[Hashable, str | None] = {}  # params key -> constraint verdict
        self._misses: dict[Hashable, int] = {}  # parent params key -> consecutive failed children
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
        storage = study._storage
        fetch = _fetcher(storage, study._study_id)
        owner = (id(storage), study._study_id)
        history = self._histories.get(owner)
        if history is None or (history.seen and fetch(history.seen - 1) is None):  # a new study
            history = self._histories[owner] = _History(len(study.directions) > 1, self._student_key)
        history.update(fetch)

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
        directions = study.directions
        if len(directions) > 1:
            params, parent, origin = self._propose_pareto(history, directions, is_duplicate, forced)
        elif len(history.complete) < self._population_size:
            params, parent, origin = self._random(is_duplicate, forced)
        else:
            numbers = history.complete[-self._population_size :]
            params, parent, origin = self._evolve(
                [history.frozen[n] for n in numbers],
                [history.arch[n] for n in numbers],
                directions,
                is_duplicate,
                forced,
            )
        storage.set_trial_system_attr(trial._trial_id, LINEAGE_KEY, {"origin": origin, "parent": parent})
        return params

    def _propose_pareto(
        self,
        history: _History,
        directions: Sequence[StudyDirection],
        is_duplicate: Callable[[Mapping[str, Any]], bool],
        forced: Mapping[str, Any] | None,
    ) -> tuple[dict[str, Any], int | None, str]:
        """Several objectives: random until ``tournament_size`` trials are complete, then children
        of the elite population (:meth:`_History.population`), compared by Pareto rank and
        hypervolume contribution. When no tournament finds a new child, a new random candidate
        comes before a duplicate (an elite population does not age out of spent neighbourhoods)."""
        if len(history.complete) < self._tournament_size:
            return self._random(is_duplicate, forced)
        numbers = history.population(self._population_size, directions)
        scores = _pareto_fitness([history.arch[n][0] for n in numbers], directions)
        proposal = self._tournaments(
            [history.frozen[n] for n in numbers],
            [history.arch[n][1] for n in numbers],
            scores,
            is_duplicate,
            forced,
        )
        if proposal[2] == "fallback":  # the elite's neighbourhoods are spent: a new random student
            fresh = self._random(is_duplicate, forced)
            if fresh[2] == "random":
                return fresh
        return proposal

    def _random(
        self, is_duplicate: Callable[[Mapping[str, Any]], bool], forced: Mapping[str, Any] | None
    ) -> tuple[dict[str, Any], None, str]:
        first = None
        for _ in range(self._max_attempts if self._avoid_duplicates else 1):
            params = self._random_valid(forced).params
            if not is_duplicate(params):
                return params, None, "random"
            first = first or params
        assert first is not None
        return first, None, "fallback"

    def _evolve(
        self,
        population: list[FrozenTrial],
        archs: list[tuple[tuple[float, ...], Hashable]],
        directions: Sequence[StudyDirection],
        is_duplicate: Callable[[Mapping[str, Any]], bool],
        forced: Mapping[str, Any] | None,
    ) -> tuple[dict[str, Any], int | None, str]:
        scores = _fitness([values for values, _ in archs], directions)
        return self._tournaments(population, [key for _, key in archs], scores, is_duplicate, forced)

    def _tournaments(
        self,
        population: list[FrozenTrial],
        arch_keys: list[Hashable],
        scores: list[Any],
        is_duplicate: Callable[[Mapping[str, Any]], bool],
        forced: Mapping[str, Any] | None,
    ) -> tuple[dict[str, Any], int | None, str]:
        """Tournaments of ``tournament_size`` members (larger ``scores`` win) until the winner has a
        valid child unlike the study's trials (see the class's docs for the fallbacks)."""
        size = min(self._tournament_size, len(population))
        tried: set[Hashable] = set()
        duplicate: tuple[dict[str, Any], int] | None = None
        sample: list[int] = []
        for _ in range(self._max_attempts):
            sample = self._rng.permutation(len(population))[:size].tolist()
            live = [i for i in sample if self._misses.get(arch_keys[i], 0) < _SPENT_LIMIT]
            if not live:
                break
            best = max(live, key=scores.__getitem__)
            parent = population[best]
            candidate = self._child(parent, forced, tried)
            if candidate is not None:
                key = _key(candidate.params)
                if not is_duplicate(candidate.params):
                    if self._check(candidate.params, key) is None:
                        self._misses.pop(arch_keys[best], None)
                        return candidate.params, parent.number, "mutation"
                elif duplicate is None and self._check(candidate.params, key) is None:
                    duplicate = (candidate.params, parent.number)
            self._misses[arch_keys[best]] = self._misses.get(arch_keys[best], 0) + 1
        if len(self._misses) >= _MEMO_LIMIT:
            self._misses.clear()
        if duplicate is not None:
            return duplicate[0], duplicate[1], "fallback"
        if sample:  # every sampled parent is spent: a valid child of the winner, even a duplicate
            parent = population[max(sample, key=scores.__getitem__)]
            for _ in range(self._max_attempts):
                candidate = self._child(parent, forced, None)
                if candidate is not None and self._check(candidate.params, _key(candidate.params)) is None:
                    return candidate.params, parent.number, "fallback"
        _logger.debug("no valid child in %d attempts; proposing a random candidate", self._max_attempts)
        return self._random_valid(forced).params, None, "fallback"

    def _child(
        self, parent: FrozenTrial, forced: Mapping[str, Any] | None, tried: set[Hashable] | None
    ) -> Candidate | None:
        """A realized mutation of ``parent``; ``None`` if it is unchanged, rejected or in ``tried``."""
        plan = mutate(
            parent.params,
            parent.distributions,
            self._rng,
            width_factors=self._width_factors,
            width_multiple=self._width_multiple,
            max_width=self._max_width,
        )
        if plan is None:
            return None
        if tried is not None:
            plan_key = _key(plan)
            if plan_key in tried:
                return None
            tried.add(plan_key)
        try:
            candidate = realize(self._suggest_func, self._rng, plan, inherit=True, forced=forced)
        except ValueError as exc:  # the space rejects this combination
            _logger.debug("search space rejected %r: %s", plan, exc)
            return None
        return None if candidate.params == parent.params else candidate

    def _random_valid(self, forced: Mapping[str, Any] | None) -> Candidate:
        return _random_valid(
            self._suggest_func,
            lambda p: self._check(p, _key(p)),
            self._rng,
            max_draws=50,
            max_repairs=20,
            width_factors=self._width_factors,
            width_multiple=self._width_multiple,
            forced=forced,
        )

    def _check(self, params: dict[str, Any], key: Hashable) -> str | None:
        """The constraint's verdict on ``params``, memoised so each candidate is checked once."""
        if self._constraint is None:
            return None
        if key in self._memo:
            return self._memo[key]
        reason = self._constraint(params)
        if reason is not None and not isinstance(reason, str):
            raise TypeError(f"constraint must return None (valid) or a reason string, got {reason!r} for {params!r}")
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = reason
        return reason
