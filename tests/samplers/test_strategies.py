"""The sampler's selection and child-generation strategies, the defaults and custom ones."""

from __future__ import annotations

import collections
import hashlib
import json
import pickle
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from diswot.samplers import (
    BaseSelection,
    EvolutionSampler,
    MutationChildGeneration,
    RegularizedSelection,
    SMSEMOASelection,
    lineage,
)
from diswot.samplers._candidates import Candidates, Proposal
from diswot.samplers._selection import Parents

MAX, MIN = StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE


def history(study: optuna.Study) -> list[list[Any]]:
    return [[t.params, list(lineage(t))] for t in study.trials]


def digest(study: optuna.Study) -> str:
    return hashlib.sha256(json.dumps(history(study), sort_keys=True).encode()).hexdigest()[:16]


def origins(study: optuna.Study) -> dict[str, int]:
    return dict(collections.Counter(lineage(t)[0] for t in study.trials))


def run(toy: SimpleNamespace, directions: list[str], n_trials: int, **kwargs: Any) -> optuna.Study:
    def objective(trial: optuna.Trial) -> float | tuple[float, ...]:
        value = toy.objective(trial)  # asserts the limit
        extra = (float(toy.cost(trial.params)), float(trial.params["stem.width"]))
        return value if len(directions) == 1 else (value, *extra[: len(directions) - 1])

    sampler = EvolutionSampler(suggest_func=toy.space, constraint=toy.constraint, **kwargs)
    study = optuna.create_study(directions=directions, sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    return study


def s0_study(toy: SimpleNamespace, directions: list[str], n_trials: int, **kwargs: Any) -> optuna.Study:
    def objective(trial: optuna.Trial) -> Any:
        toy.s0_space(trial)
        depths = list(trial.params.values())
        return float(sum(depths)) if len(directions) == 1 else (sum(depths), max(depths))

    study = optuna.create_study(directions=directions, sampler=EvolutionSampler(suggest_func=toy.s0_space, **kwargs))
    study.optimize(objective, n_trials=n_trials)
    return study


# Digests of params and lineage proposed for these seeds before the sampler was split into strategies.
@pytest.mark.parametrize(
    ("name", "expected", "counts"),
    [
        ("mo-small", "bbd35ced0640c713", {"random": 4, "mutation": 56}),
        ("mo-default", "60c3aaa3d77adfd1", {"random": 10, "mutation": 50}),
        ("mo-3obj", "577934d0d75fa594", {"random": 4, "mutation": 46}),
        ("so-small", "0d66d93dd4fcc44e", {"random": 6, "mutation": 54}),
        ("s0-exhaust", "43bcc204c6c533ef", {"random": 20, "mutation": 23, "fallback": 77}),
        ("s0-mo-key", "de885311c6a2e15c", {"random": 11, "mutation": 9, "fallback": 20}),
    ],
)
def test_seeded_proposals_are_unchanged(toy: SimpleNamespace, name: str, expected: str, counts: dict) -> None:
    """Single- and multi-objective runs, the fallbacks included, propose what they did for a seed."""
    if name == "mo-small":
        study = run(toy, ["maximize", "minimize"], 60, seed=0, population_size=8, tournament_size=4)
    elif name == "mo-default":
        study = run(toy, ["maximize", "minimize"], 60, seed=1)
    elif name == "mo-3obj":
        study = run(toy, ["maximize", "minimize", "minimize"], 50, seed=0, population_size=8, tournament_size=4)
    elif name == "so-small":
        study = run(toy, ["minimize"], 60, seed=2, population_size=6, tournament_size=3)
    elif name == "s0-exhaust":

        def limit(params: dict) -> str | None:
            return None if sum(params.values()) <= 13 else "deep"

        study = s0_study(toy, ["maximize"], 120, seed=0, constraint=limit)
    else:
        key = lambda p: tuple(sorted(p.values()))  # noqa: E731
        study = s0_study(toy, ["maximize", "minimize"], 40, seed=1, population_size=6, tournament_size=3, key=key)
    assert origins(study) == counts
    assert digest(study) == expected


@pytest.mark.parametrize(
    ("directions", "selection"),
    [(["maximize"], RegularizedSelection), (["maximize", "minimize"], SMSEMOASelection)],
)
def test_the_default_selection_follows_the_number_of_objectives(
    toy: SimpleNamespace, directions: list[str], selection: type[BaseSelection]
) -> None:
    sizes = {"population_size": 6, "tournament_size": 3}
    default = run(toy, directions, 30, seed=3, **sizes)
    explicit = run(toy, directions, 30, seed=3, selection=selection(**sizes), **sizes)
    other = RegularizedSelection if selection is SMSEMOASelection else SMSEMOASelection
    swapped = run(toy, directions, 30, seed=3, selection=other(**sizes), **sizes)
    assert history(explicit) == history(default) != history(swapped)


def test_the_selection_sizes_the_population_not_the_sampler_arguments(toy: SimpleNamespace) -> None:
    study = run(toy, ["maximize"], 8, seed=0, selection=RegularizedSelection(population_size=4, tournament_size=2))
    assert [lineage(t)[0] for t in study.trials] == ["random"] * 4 + ["mutation"] * 4  # not 20 random


def test_swapped_selections_run_on_either_kind_of_study(toy: SimpleNamespace) -> None:
    sizes = {"population_size": 6, "tournament_size": 3}
    single = run(toy, ["maximize"], 25, seed=0, selection=SMSEMOASelection(**sizes))  # elitist, one objective
    assert origins(single)["mutation"] > 15
    parents = {lineage(t)[1] for t in single.trials[10:]}
    best = sorted(single.trials[:10], key=lambda t: t.value or 0.0)[-6:]
    assert parents & {t.number for t in best}  # the best, not the latest, breed
    multi = run(toy, ["maximize", "minimize"], 25, seed=0, selection=RegularizedSelection(**sizes))
    assert [lineage(t)[0] for t in multi.trials[:6]] == ["random"] * 6 and origins(multi)["mutation"] > 15


class BestSelection(BaseSelection):
    """A custom selection: the P best trials by the first objective, ties to the later trial."""

    elitist = True

    def survivors(
        self, population: list[FrozenTrial], newcomers: list[FrozenTrial], directions: Sequence[StudyDirection]
    ) -> list[FrozenTrial]:
        sign = 1 if directions[0] == MAX else -1
        best = sorted(population + newcomers, key=lambda t: (sign * t.values[0], t.number))[-self.population_size :]
        return sorted(best, key=lambda t: t.number)

    def fitness(self, population: list[FrozenTrial], directions: Sequence[StudyDirection]) -> list[Any]:
        return [t.number for t in population]  # the newest member wins


def test_a_custom_selection_keeps_its_population(toy: SimpleNamespace) -> None:
    selection = BestSelection(population_size=5, tournament_size=5)
    study = run(toy, ["maximize"], 40, seed=0, selection=selection)
    for trial in study.trials[5:]:
        origin, parent = lineage(trial)
        if origin == "mutation":
            earlier = [t for t in study.trials[: trial.number] if t.state == TrialState.COMPLETE]
            population = sorted(earlier, key=lambda t: (t.value, t.number))[-5:]
            assert parent == max(t.number for t in population)


def test_a_custom_child_generation_proposes(toy: SimpleNamespace) -> None:
    calls: list[Parents] = []

    def clone_the_best(candidates: Candidates, parents: Parents) -> Proposal:
        calls.append(parents)
        best = max(range(len(parents.trials)), key=parents.fitness.__getitem__)
        return Proposal(dict(parents.trials[best].params), parents.trials[best].number, "fallback")

    study = run(toy, ["maximize"], 9, seed=0, population_size=4, tournament_size=2, child_generation=clone_the_best)
    assert len(calls) == 5 and all(len(p.trials) == 4 and p.tournament_size == 2 for p in calls)
    assert [lineage(t)[0] for t in study.trials] == ["random"] * 4 + ["fallback"] * 5
    best = max(study.trials[:4], key=lambda t: t.value or 0.0)
    assert all(t.params == best.params for t in study.trials[4:])


def test_mutation_child_generation_with_its_own_settings(toy: SimpleNamespace) -> None:
    sizes = {"population_size": 6, "tournament_size": 3}
    default = run(toy, ["maximize"], 30, seed=0, **sizes)
    explicit = run(toy, ["maximize"], 30, seed=0, child_generation=MutationChildGeneration(), **sizes)
    assert history(explicit) == history(default)
    coarse = MutationChildGeneration(max_attempts=3, width_factors=(0.5, 2.0), width_multiple=16, max_width=128)
    other = run(toy, ["maximize"], 30, seed=0, child_generation=coarse, **sizes)
    # the random phase repairs over-limit candidates with the child generation's settings too
    assert history(other) != history(default)
    assert origins(other)["mutation"] > 15


def test_regularized_survivors_are_the_last_complete_trials_in_any_order() -> None:
    trials = [optuna.trial.create_trial(value=float(v)) for v in (5, 1, 4, 2, 3)]
    for number, trial in enumerate(trials):
        trial.number = number
    selection = RegularizedSelection(population_size=3, tournament_size=2)
    late = [trials[4], trials[0]]  # a trial that finished late comes after newer ones
    kept = selection.survivors(trials[1:4], late, [MAX])
    assert [t.number for t in kept] == [2, 3, 4]
    assert selection.fitness(kept, [MAX]) == [4.0, 2.0, 3.0] and selection.fitness(kept, [MIN]) == [-4.0, -2.0, -3.0]
    assert selection.warm_up == 3 and not selection.elitist


def test_sms_emoa_survivors_keep_the_front_then_the_largest_contributions() -> None:
    values = [(0.0, 10.0), (5.0, 5.0), (10.0, 0.0), (4.0, 6.0), (6.0, 6.0), (1.0, 1.0)]
    trials = [optuna.trial.create_trial(values=list(v)) for v in values]
    for number, trial in enumerate(trials):
        trial.number = number
    selection = SMSEMOASelection(population_size=4, tournament_size=2)
    kept = selection.survivors([], trials, [MAX, MAX])
    # the front is 0, 2, 4; of the next front (1, 3), 1 keeps the larger hypervolume contribution:
    # normalised, (0.5, 0.5) and (0.6, 0.4) contribute 0.1 x 0.6 and 0.5 x 0.1 (reference 1.1)
    assert [t.number for t in kept] == [0, 1, 2, 4]
    assert selection.warm_up == 2 and selection.elitist
    parents = selection([], trials, [MAX, MAX])
    assert parents.trials == kept and parents.tournament_size == 2 and parents.elitist
    assert min(parents.fitness[0], parents.fitness[2], parents.fitness[3]) > parents.fitness[1]  # rank first


def test_strategies_are_validated(toy: SimpleNamespace) -> None:
    with pytest.raises(ValueError, match="cannot exceed population_size"):
        SMSEMOASelection(population_size=2, tournament_size=3)
    with pytest.raises(ValueError, match="max_attempts"):
        MutationChildGeneration(max_attempts=0)
    with pytest.raises(ValueError, match="other than 1"):
        MutationChildGeneration(width_factors=(1,))
    with pytest.raises(TypeError, match="BaseSelection"):
        EvolutionSampler(suggest_func=toy.space, selection=lambda *a: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="child_generation"):
        EvolutionSampler(suggest_func=toy.space, child_generation=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        BaseSelection()  # type: ignore[abstract]


def test_strategies_travel_with_a_pickled_sampler(toy: SimpleNamespace) -> None:
    sampler = EvolutionSampler(
        suggest_func=toy.space, seed=0, selection=BestSelection(population_size=3, tournament_size=2)
    )
    clone = pickle.loads(pickle.dumps(sampler))
    assert isinstance(clone._selection, BestSelection) and clone._selection.population_size == 3
