"""EvolutionSampler on Optuna studies: limits, population, resume, workers, determinism."""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from diswot.samplers import LINEAGE_KEY, EvolutionSampler, MutationChildGeneration, lineage
from diswot.samplers._evolution import _fitness, _History, _pareto_fitness
from diswot.samplers._mutation import param_block
from diswot.samplers._pareto import losses, pareto_ranks


def sampler(toy: SimpleNamespace, **kwargs: Any) -> EvolutionSampler:
    return EvolutionSampler(suggest_func=toy.space, constraint=toy.constraint, **kwargs)


def origins(study: optuna.Study) -> list[tuple[str, int | None]]:
    return [lineage(t) for t in study.trials]


def changed_blocks(parent: dict, child: dict) -> set[str]:
    return {param_block(n) for n in parent.keys() | child.keys() if parent.get(n) != child.get(n)}


def test_no_over_limit_trial_is_ever_evaluated(toy: SimpleNamespace) -> None:
    checked: list[dict] = []

    def constraint(params: dict) -> str | None:
        checked.append(params)
        return toy.constraint(params)

    study = optuna.create_study(
        direction="maximize",
        sampler=EvolutionSampler(suggest_func=toy.space, constraint=constraint, seed=0),
    )
    study.optimize(toy.objective, n_trials=200)  # the objective asserts the limit
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert any(toy.constraint(p) is not None for p in checked)  # the limit does bite

    keys = [frozenset(p.items()) for p in checked]
    assert len(keys) == len(set(keys))  # the constraint saw each candidate once

    trials = study.trials
    for trial, (origin, parent) in zip(trials, origins(study)):
        if trial.number < 20:
            assert (origin, parent) == ("random", None)
        elif origin == "mutation":
            assert parent is not None and parent < trial.number
            parent_params = trials[parent].params
            assert len(changed_blocks(parent_params, trial.params)) == 1
    assert sum(o == "mutation" for o, _ in origins(study)) > 150
    assert study.best_value > max(t.value for t in trials[:20])  # evolution improves on random


def test_initial_population_is_random_valid_and_distinct(toy: SimpleNamespace) -> None:
    study = optuna.create_study(
        direction="maximize", sampler=sampler(toy, seed=3, population_size=12, tournament_size=4)
    )
    study.optimize(toy.objective, n_trials=12)
    assert origins(study) == [("random", None)] * 12
    assert len({frozenset(t.params.items()) for t in study.trials}) == 12
    study.optimize(toy.objective, n_trials=1)
    assert lineage(study.trials[-1])[0] == "mutation"


def test_minimize_picks_the_lowest_value_as_parent(toy: SimpleNamespace) -> None:
    study = optuna.create_study(
        direction="minimize", sampler=sampler(toy, seed=0, population_size=5, tournament_size=5)
    )
    study.optimize(toy.objective, n_trials=6)
    parent = lineage(study.trials[-1])[1]
    assert study.trials[parent].value == min(t.value for t in study.trials[:5])


def test_resume_continues_from_the_stored_population(toy: SimpleNamespace, tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    sizes = {"population_size": 6, "tournament_size": 3}
    first = optuna.create_study(
        study_name="s", storage=url, direction="maximize", sampler=sampler(toy, seed=0, **sizes)
    )
    first.optimize(toy.objective, n_trials=8)
    resumed = optuna.load_study(study_name="s", storage=url, sampler=sampler(toy, seed=1, **sizes))
    resumed.optimize(toy.objective, n_trials=5)
    new = origins(resumed)[8:]
    assert all(origin != "random" for origin, _ in new)
    assert any(origin == "mutation" and parent < 8 for origin, parent in new)
    assert all(toy.constraint(t.params) is None for t in resumed.trials)


def test_same_seed_same_history_same_proposals(toy: SimpleNamespace) -> None:
    def run(seed: int, reseed: bool = False) -> list[dict]:
        s = sampler(toy, seed=seed)
        if reseed:
            s.reseed_rng()
        study = optuna.create_study(direction="maximize", sampler=s)
        study.optimize(toy.objective, n_trials=50)
        return [t.params for t in study.trials]

    assert run(5) == run(5)
    assert run(5) != run(6)
    assert run(5) != run(5, reseed=True)


def test_two_workers_share_one_population(toy: SimpleNamespace, tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    sizes = {"population_size": 4, "tournament_size": 2}
    a = optuna.create_study(study_name="w", storage=url, direction="maximize", sampler=sampler(toy, seed=1, **sizes))
    b = optuna.load_study(study_name="w", storage=url, sampler=sampler(toy, seed=2, **sizes))
    mine: dict[str, list[int]] = {"a": [], "b": []}
    for _ in range(8):
        ta = a.ask()
        va = toy.objective(ta)
        tb = b.ask()  # while ta is still running
        vb = toy.objective(tb)
        a.tell(ta, va)
        b.tell(tb, vb)
        mine["a"].append(ta.number)
        mine["b"].append(tb.number)
    trials = a.trials
    assert sorted(mine["a"] + mine["b"]) == list(range(16))
    parents = {name: {lineage(trials[n])[1] for n in numbers} - {None} for name, numbers in mine.items()}
    assert parents["a"] & set(mine["b"]) and parents["b"] & set(mine["a"])
    assert len({frozenset(t.params.items()) for t in trials}) == 16


def test_beats_random_search_on_a_known_optimum() -> None:
    target = (3, 5, 2, 7)

    def space(trial: optuna.trial.BaseTrial) -> None:
        for i in range(len(target)):
            trial.suggest_int(f"b{i}.depth", 0, 8)

    def objective(trial: optuna.trial.Trial) -> float:  # optimum 0, one of 9**4 architectures
        space(trial)
        return -sum(abs(trial.params[f"b{i}.depth"] - t) for i, t in enumerate(target))

    def trials_to_optimum(sampler: optuna.samplers.BaseSampler, budget: int = 150) -> int:
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(objective, n_trials=budget, callbacks=[lambda s, t: t.value == 0 and s.stop()])
        return len(study.trials) if study.best_value == 0 else budget + 1

    seeds = range(4)
    evolution = np.mean([trials_to_optimum(EvolutionSampler(suggest_func=space, seed=s)) for s in seeds])
    random = np.mean([trials_to_optimum(optuna.samplers.RandomSampler(seed=s)) for s in seeds])
    assert evolution < 0.5 * random


def test_exhausted_space_falls_back_to_valid_duplicates(toy: SimpleNamespace) -> None:
    def limit(params: dict) -> str | None:
        return None if sum(params.values()) <= 13 else "too deep"

    study = optuna.create_study(
        direction="maximize", sampler=EvolutionSampler(suggest_func=toy.s0_space, constraint=limit, seed=0)
    )
    study.optimize(lambda t: (toy.s0_space(t), float(sum(t.params.values())))[1], n_trials=120)
    assert all(limit(t.params) is None for t in study.trials)
    distinct = {frozenset(t.params.items()) for t in study.trials}
    assert len(distinct) < 120 and origins(study)[-1][0] == "fallback"
    first_fallback = next(i for i, (o, _) in enumerate(origins(study)) if o == "fallback")
    assert len({frozenset(t.params.items()) for t in study.trials[:first_fallback]}) == first_fallback


def test_without_deduplication_children_may_repeat(toy: SimpleNamespace) -> None:
    study = optuna.create_study(
        direction="maximize", sampler=EvolutionSampler(suggest_func=toy.s0_space, seed=0, avoid_duplicates=False)
    )
    study.optimize(lambda t: (toy.s0_space(t), float(sum(t.params.values())))[1], n_trials=80)
    assert origins(study)[-1][0] == "mutation"
    assert len({frozenset(t.params.items()) for t in study.trials}) < 80


def test_params_outside_the_plan_and_enqueued_trials(toy: SimpleNamespace) -> None:
    study = optuna.create_study(direction="maximize", sampler=sampler(toy, seed=0))

    def objective(trial: optuna.trial.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)  # not in the search space
        assert 1e-4 <= lr <= 1e-1
        return toy.objective(trial)

    study.enqueue_trial({"stem.width": 8, "b1.depth": 0, "b2.depth": 0, "b3.depth": 0, "lr": 0.01})
    study.enqueue_trial({"b1.depth": 1, "b2.depth": 0, "b3.depth": 0})  # partly fixed
    study.optimize(objective, n_trials=25)
    first, second = study.trials[:2]
    assert first.params["lr"] == 0.01 and LINEAGE_KEY not in first.system_attrs
    assert {k: second.params[k] for k in ("b1.depth", "b2.depth", "b3.depth")} == {
        "b1.depth": 1,
        "b2.depth": 0,
        "b3.depth": 0,
    }
    assert all(toy.constraint(t.params) is None for t in study.trials)


def test_threads_and_pickling(toy: SimpleNamespace) -> None:
    s = sampler(toy, seed=0)
    study = optuna.create_study(direction="maximize", sampler=s)
    study.optimize(toy.objective, n_trials=40, n_jobs=2)
    assert len(study.trials) == 40 and all(t.state == TrialState.COMPLETE for t in study.trials)
    assert not s._plans  # every plan dropped in after_trial
    clone = pickle.loads(pickle.dumps(s))
    study.sampler = clone
    study.optimize(toy.objective, n_trials=2)


def test_impossible_limits_fail_the_trial_with_a_reason(toy: SimpleNamespace) -> None:
    study = optuna.create_study(sampler=EvolutionSampler(suggest_func=toy.space, constraint=lambda p: "too big"))
    with pytest.raises(RuntimeError, match="last reason: too big"):
        study.optimize(toy.objective, n_trials=1)
    bad = optuna.create_study(sampler=EvolutionSampler(suggest_func=toy.space, constraint=lambda p: False))
    with pytest.raises(TypeError, match="reason string"):
        bad.optimize(toy.objective, n_trials=1)


def test_multi_objective_selects_parents_on_the_front(toy: SimpleNamespace) -> None:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        return toy.objective(trial), float(toy.cost(trial.params))  # asserts the limit

    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler(toy, seed=1))
    study.optimize(objective, n_trials=120)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    front = {t.number for t in study.best_trials}
    ranks, lineages = [], origins(study)
    for trial, (origin, parent) in zip(study.trials, lineages):
        if origin != "mutation":
            continue
        earlier = [t for t in study.trials[: trial.number] if t.state == TrialState.COMPLETE]
        points = losses([t.values for t in earlier], study.directions)
        ranks.append(pareto_ranks(points)[[t.number for t in earlier].index(parent)])
    assert sum(o == "mutation" for o, _ in lineages) > 60
    # the population keeps the best fronts of all earlier trials and the tournament of 10 out of
    # 20 picks the member of lowest rank it draws: mostly the front of the whole study so far
    assert np.mean(np.array(ranks) == 0) > 0.9
    assert len(front) > 3


def two_objectives(toy: SimpleNamespace) -> Callable[[optuna.Trial], tuple[float, float]]:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        return toy.objective(trial), float(toy.cost(trial.params))  # asserts the limit

    return objective


def test_multi_objective_warm_up_is_one_tournament(toy: SimpleNamespace) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler(toy, seed=2))
    study.optimize(two_objectives(toy), n_trials=11)
    assert origins(study)[:10] == [("random", None)] * 10  # tournament_size 10, not population_size 20
    assert lineage(study.trials[10])[0] == "mutation"


def test_multi_objective_population_keeps_the_best_not_the_last(toy: SimpleNamespace, tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'mo.db'}"
    sizes = {"population_size": 8, "tournament_size": 4}
    study = optuna.create_study(
        study_name="mo", storage=url, directions=["maximize", "minimize"], sampler=sampler(toy, seed=4, **sizes)
    )
    study.optimize(two_objectives(toy), n_trials=60)
    resumed = optuna.load_study(study_name="mo", storage=url, sampler=sampler(toy, seed=5, **sizes))
    resumed.optimize(two_objectives(toy), n_trials=20)
    trials = resumed.trials
    # regularised evolution's population would be the last 8 trials; an elitist one keeps old front members
    parents = [(t.number, parent) for t, (origin, parent) in zip(trials, origins(resumed)) if origin == "mutation"]
    assert any(parent is not None and parent < number - 8 for number, parent in parents)
    assert all(origin == "mutation" for origin, _ in origins(resumed)[60:])
    front = {t.number for t in resumed.best_trials}
    assert sum(parent in front for _, parent in parents[-20:]) >= 15  # the resumed sampler breeds from the front


def test_key_makes_equivalent_candidates_duplicates(toy: SimpleNamespace) -> None:
    def run(key: Callable[[Mapping[str, Any]], Any] | None) -> list[tuple[int, ...]]:
        s = EvolutionSampler(suggest_func=toy.s0_space, seed=0, population_size=6, tournament_size=3, key=key)
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=s)
        study.optimize(lambda t: (toy.s0_space(t), (sum(t.params.values()), max(t.params.values())))[1], n_trials=16)
        return [tuple(sorted(t.params.values())) for t in study.trials]

    unordered = run(lambda params: tuple(sorted(params.values())))  # stage order does not matter
    assert len(set(unordered)) == 16  # of the 20 multisets of 3 depths
    assert len(set(run(None))) < 16  # without the key, reorderings of one multiset do come up


def test_single_objective_proposals_are_unchanged(toy: SimpleNamespace) -> None:
    """The single-objective path proposes exactly what it always has for a seed (a digest of
    params and lineage over 60 trials, the population filled and evolved)."""
    study = optuna.create_study(
        direction="maximize", sampler=sampler(toy, seed=0, population_size=10, tournament_size=4)
    )
    study.optimize(toy.objective, n_trials=60)
    text = json.dumps([[t.params, list(lineage(t))] for t in study.trials], sort_keys=True)
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == "dff1f1b283c2d8dc"


def test_pareto_fitness_orders_by_rank_then_hypervolume_contribution() -> None:
    directions = [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    values = [(0.0, 0.0), (4.0, 1.0), (6.0, 3.0), (6.1, 3.2), (10.0, 10.0), (3.0, 2.0)]
    fit = _pareto_fitness(values, directions)
    assert [f[0] for f in fit] == [0, 0, 0, 0, 0, -1]
    # normalised losses (1 - score/10, cost/10), by the first: E (0, 1), D (.39, .32), C (.4, .3),
    # B (.6, .1), A (1, 0); each one's box reaches the next one's x and the previous one's y, e.g.
    # B's (1 - .6) x (.3 - .1); the reference point (1.1, 1.1) closes A's on the right, E's on top
    assert [f[1] for f in fit] == pytest.approx([0.1 * 0.1, 0.4 * 0.2, 0.2 * 0.02, 0.01 * 0.68, 0.39 * 0.1, 0.6 * 0.6])
    assert max(range(5), key=fit.__getitem__) == 1  # (4, 1) covers the most of the front
    assert min(fit[:5]) > fit[5]  # rank first: the dominated member loses to every front member


def test_fitness_orders_by_rank_then_crowding() -> None:
    directions = [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    values = [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (2.5, 2.6), (1.0, 3.0), (2.0, 2.9)]
    fit = _fitness(values, directions)
    assert [f[0] for f in fit] == [0, 0, 0, 0, -2, -1]
    assert fit[0][1] == fit[2][1] == float("inf")  # the front's ends
    assert fit[1][1] > 0 and fit[3][1] > 0
    assert _fitness([(1.0,), (3.0,)], directions[1:]) == [-1.0, -3.0]  # one objective: the signed value


def test_unhandled_directions_are_refused_from_both_entry_points(toy: SimpleNamespace) -> None:
    unset = SimpleNamespace(directions=[optuna.study.StudyDirection.NOT_SET], study_name="odd")
    trial = SimpleNamespace(_trial_id=0, number=0, system_attrs={})
    with pytest.raises(ValueError, match="minimised or maximised.*'odd'"):
        sampler(toy).sample_relative(unset, trial, {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="minimised or maximised"):
        sampler(toy).sample_independent(
            unset,
            trial,
            "stem.width",
            optuna.distributions.IntDistribution(8, 64, step=8),  # type: ignore[arg-type]
        )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"suggest_func": None}, TypeError, "suggest function"),
        ({"constraint": 3}, TypeError, "constraint"),
        ({"population_size": 0}, ValueError, "population_size must be an int >= 1"),
        ({"population_size": 2.5}, ValueError, "population_size"),
        ({"tournament_size": 30}, ValueError, "cannot exceed population_size"),
        ({"tournament_size": True}, ValueError, "tournament_size"),
        ({"seed": "x"}, TypeError, "seed"),
        ({"avoid_duplicates": 1}, TypeError, "avoid_duplicates"),
    ],
)
def test_arguments_are_validated(toy: SimpleNamespace, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        EvolutionSampler(**{"suggest_func": toy.space, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"width_factors": ()}, "width_factors"),
        ({"width_factors": (0.5, 1)}, "other than 1"),
        ({"width_factors": (0.5, -2.0)}, "positive"),
        ({"width_multiple": 0}, "width_multiple"),
        ({"max_width": 4}, "max_width must be an int >= 8"),
    ],
)
def test_the_child_generation_owns_its_settings(toy: SimpleNamespace, kwargs: dict, match: str) -> None:
    """The mutation's settings are the child generation's, checked there; the sampler takes none of them."""
    with pytest.raises(ValueError, match=match):
        MutationChildGeneration(**kwargs)
    with pytest.raises(TypeError):
        EvolutionSampler(**{"suggest_func": toy.space, **kwargs})
    mutation = MutationChildGeneration(max_attempts=7, width_factors=(0.5, 2.0))
    sampler = EvolutionSampler(suggest_func=toy.space, child_generation=mutation)
    assert sampler._child_generation is mutation and sampler._mutation is mutation


def test_constructor_is_keyword_only(toy: SimpleNamespace) -> None:
    with pytest.raises(TypeError):
        EvolutionSampler(toy.space)  # type: ignore[misc]


def test_history_reads_each_finished_trial_once() -> None:
    def frozen(state: TrialState, a: int, value: float | None = None) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(
            state=state, params={"a": a}, distributions={"a": optuna.distributions.IntDistribution(0, 9)}, value=value
        )

    trials = [
        frozen(TrialState.COMPLETE, 1, 1.0),
        frozen(TrialState.RUNNING, 2),
        frozen(TrialState.FAIL, 3),
        frozen(TrialState.PRUNED, 4),
    ]
    for number, trial in enumerate(trials):
        trial.number = number
    history = _History()
    fetch = lambda number: trials[number] if number < len(trials) else None  # noqa: E731
    history.update(fetch)
    assert history.complete == [0] and set(history.pending) == {1} and history.seen == 4
    assert history.keys == {frozenset({("a", 1)}), frozenset({("a", 4)})}
    assert history.unfinished_keys() == {frozenset({("a", 2)})}
    trials[0] = frozen(TrialState.COMPLETE, 9, 9.0)  # a finished trial is not read again
    trials[1] = frozen(TrialState.COMPLETE, 2, 5.0)
    trials.append(frozen(TrialState.COMPLETE, 5, 0.5))
    trials[1].number, trials[4].number = 1, 4
    history.update(fetch)
    assert history.complete == [0, 1, 4] and not history.pending
    assert history.arch[0] == ((1.0,), frozenset({("a", 1)})) and history.arch[1] == ((5.0,), frozenset({("a", 2)}))


def test_in_memory_study_is_read_trial_by_trial(toy: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Proposals never copy the in-memory study's whole trial list; out-of-order finishes are seen."""
    storage = optuna.storages.InMemoryStorage()
    full_reads: list[int] = []
    original = storage.get_all_trials

    def counting(study_id: int, deepcopy: bool = True, states: Any = None) -> list:
        if states is None:
            full_reads.append(study_id)
        return original(study_id, deepcopy=deepcopy, states=states)

    monkeypatch.setattr(storage, "get_all_trials", counting)
    study = optuna.create_study(direction="maximize", storage=storage, sampler=sampler(toy, seed=0))
    held = [study.ask() for _ in range(3)]  # still running while 30 others finish
    study.optimize(toy.objective, n_trials=30)
    assert not full_reads
    for trial in held:
        study.tell(trial, toy.objective(trial))
    study.optimize(toy.objective, n_trials=1)
    history = next(iter(study.sampler._histories.values()))
    assert list(history.pending) == [33] and history.complete == list(range(33)) and history.seen == 34
    assert not full_reads
