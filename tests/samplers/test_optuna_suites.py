"""Optuna's own sampler conformance suites (``optuna.testing.pytest_samplers``) on EvolutionSampler.

The suites create their studies with ``optuna.create_study(sampler=...)``; the ``storage``
fixture makes that default to each storage in turn, so every case runs in memory, on SQLite and
on a journal file. The cases that run a hundred trials or more (:data:`HEAVY`) are ``slow`` on
the file storages (``-m slow`` runs them); in memory every case runs by default.

The sampler's suggest function suggests what the case's objective suggests (:data:`MIRRORS`),
so its proposals come from the evolution: with a population of 2, every trial proposed once two
trials are complete must be a mutation of one of them (duplicates are allowed, so that tiny
spaces still breed), and the cases that complete enough trials (:data:`EVOLVING`) must show
some. :func:`test_multi_objective_suite_shapes_evolve` runs the multi-objective case's
distributions through a whole study, which that case does not.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase, MultiObjectiveSamplerTestCase
from optuna.trial import BaseTrial, FrozenTrial, TrialState

from diswot.samplers import EvolutionSampler, lineage

#: the cases that run 100+ trials: slow on file storages (every trial reads the study back)
HEAVY = (
    "test_float",
    "test_int",
    "test_categorical",
    "test_combination_of_different_distributions_objective",
    "test_multi_objective_sample_independent",
)


def _param(kind: str, *, slow: bool = False) -> object:
    return pytest.param(kind, marks=pytest.mark.slow) if slow else kind


STORAGES = ["inmemory", "sqlite", "journal"]


def _storage(kind: str, tmp_path: Path) -> optuna.storages.BaseStorage | str | None:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    if kind == "journal":
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "study.log")))
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``storage``: every case on every storage, the heavy ones ``slow`` off memory."""
    if "storage" in metafunc.fixturenames:
        heavy = metafunc.function.__name__ in HEAVY
        params = [_param(k, slow=k == "journal" or (heavy and k != "inmemory")) for k in STORAGES]
        metafunc.parametrize("storage", params, indirect=True)


@pytest.fixture
def studies() -> list[optuna.Study]:
    """The studies a case creates."""
    return []


@pytest.fixture
def storage(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, studies: list[optuna.Study]
) -> Iterator[str]:
    """Make ``optuna.create_study`` default to the storage named by the parameter."""
    kind: str = request.param
    create = optuna.study.create_study
    counter = iter(range(1_000_000))

    @functools.wraps(create)
    def create_on_storage(*args: object, **kwargs: object) -> optuna.Study:
        if kwargs.get("storage") is None:
            kwargs["storage"] = _storage(kind, tmp_path)
            if kind != "inmemory" and kwargs.get("study_name") is None:
                kwargs["study_name"] = f"suite-{next(counter)}"  # several studies may share one file
        study = create(*args, **kwargs)  # type: ignore[arg-type]
        studies.append(study)
        return study

    monkeypatch.setattr(optuna, "create_study", create_on_storage)
    monkeypatch.setattr(optuna.study, "create_study", create_on_storage)
    yield kind


def _suggest(trial: BaseTrial, name: str, dist: BaseDistribution) -> Any:
    """``trial.suggest_*(name, ...)`` for ``dist``."""
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    assert isinstance(dist, CategoricalDistribution)
    return trial.suggest_categorical(name, dist.choices)


def _suggesting(**distributions: BaseDistribution) -> Callable[[BaseTrial], None]:
    def suggest(trial: BaseTrial) -> None:
        for name, dist in distributions.items():
            _suggest(trial, name, dist)

    return suggest


def _category(trial: BaseTrial) -> None:
    category = trial.suggest_categorical("category", ["x", "y"])
    trial.suggest_categorical(str(category), ["a", "b"])


def _x_then_y_or_z(trial: BaseTrial) -> None:
    trial.suggest_float("y" if trial.suggest_categorical("x", [True, False]) else "z", 0, 1)


def _both(x: Callable[[BaseTrial], Any], y: Callable[[BaseTrial], Any]) -> Callable[[BaseTrial], None]:
    return lambda trial: (x(trial), y(trial)) and None


_FLOAT, _INT = FloatDistribution, IntDistribution
_SINGLE = {
    "a": CategoricalDistribution([1]),
    "b": _INT(1, 1),
    "c": _INT(1, 1, log=True),
    "d": _FLOAT(1.0, 1.0),
    "e": _FLOAT(1.0, 1.0, log=True),
    "f": _FLOAT(1.0, 1.0, step=1.0),
}

#: case -> f(its parameters): a suggest function that suggests what the case's objective does
MIRRORS: dict[str, Callable[[dict[str, Any]], Callable[[BaseTrial], Any]]] = {
    "test_float": lambda p: _suggesting(x=p["distribution"]),
    "test_int": lambda p: _suggesting(x=p["distribution"]),
    "test_categorical": lambda p: _suggesting(x=CategoricalDistribution(p["choices"])),
    "test_conditional_sample_independent": lambda p: _category,
    "test_nan_objective_value": lambda p: _suggesting(x=_FLOAT(0.1, 0.2)),
    "test_partial_fixed_sampling": lambda p: _suggesting(x=_FLOAT(-1, 1), y=_INT(-1, 1), z=_FLOAT(-1, 1)),
    "test_sample_single_distribution": lambda p: _suggesting(**_SINGLE),
    "test_single_parameter_objective": lambda p: p["suggest_method_x"],
    "test_conditional_parameter_objective": lambda p: _x_then_y_or_z,
    "test_combination_of_different_distributions_objective": lambda p: _both(
        p["suggest_method_x"], p["suggest_method_y"]
    ),
    "test_dynamic_range_objective": lambda p: _suggesting(x=_FLOAT(0, 10), y=_INT(0, 10)),
    "test_multi_objective_sample_independent": lambda p: _suggesting(x=p["distribution"]),
}

#: the cases that complete more trials than the population holds, so must breed
EVOLVING = (
    "test_conditional_sample_independent",
    "test_nan_objective_value",
    "test_single_parameter_objective",
    "test_conditional_parameter_objective",
    "test_combination_of_different_distributions_objective",
    "test_dynamic_range_objective",
)
POPULATION = 2


def _mutations(study: optuna.Study, warm_up: int = POPULATION) -> int:
    """Check that the sampler's trials are random until ``warm_up`` trials are complete and
    mutations of complete trials after; return how many mutations there are."""
    complete: list[int] = []
    mutations = 0
    for trial in study.get_trials(deepcopy=False):
        origin, parent = lineage(trial)
        if origin is not None and len(complete) < warm_up:
            assert (origin, parent) == ("random", None), trial
        elif origin is not None:
            assert origin == "mutation" and parent in complete, trial
            mutations += 1
        if trial.state == TrialState.COMPLETE:
            complete.append(trial.number)
    return mutations


def _sampler(suggest: Callable[[BaseTrial], Any], outside: list[str], **kwargs: Any) -> EvolutionSampler:
    """A seeded sampler that allows duplicates and notes in ``outside`` each param it draws
    outside its plan (its random fallback)."""
    sampler = EvolutionSampler(suggest_func=suggest, avoid_duplicates=False, seed=0, **kwargs)
    fallback = sampler._random_sampler.sample_independent

    def at_random(study: optuna.Study, trial: FrozenTrial, name: str, dist: BaseDistribution) -> Any:
        outside.append(name)
        return fallback(study, trial, name, dist)

    sampler._random_sampler.sample_independent = at_random  # type: ignore[method-assign]
    return sampler


class _OnEveryStorage:
    @pytest.fixture
    def outside(self) -> list[str]:
        """The params the case's samplers drew outside their plans (at random)."""
        return []

    @pytest.fixture
    def sampler(self, storage: str, request: pytest.FixtureRequest, outside: list[str]) -> Callable[[], BaseSampler]:
        suggest = MIRRORS[request.node.originalname](request.node.callspec.params)
        return functools.partial(_sampler, suggest, outside, population_size=POPULATION, tournament_size=POPULATION)

    @pytest.fixture(autouse=True)
    def _breeds(
        self, request: pytest.FixtureRequest, studies: list[optuna.Study], outside: list[str]
    ) -> Iterator[None]:
        """After the case: its trials are random, then mutations (some, in :data:`EVOLVING`), and
        every param came from the sampler's plan (but those whose range the case moved)."""
        yield
        mutations = sum(_mutations(study) for study in studies)
        if request.node.originalname in EVOLVING:
            assert mutations > 0, "the case ran no evolution"
        if request.node.originalname != "test_dynamic_range_objective":
            assert not outside, f"sampled outside the plan: {outside}"


class TestBasicSampler(_OnEveryStorage, BasicSamplerTestCase):
    """Floats, ints, categoricals, conditional and fixed params, NaN values, dynamic ranges."""


class TestMultiObjective(_OnEveryStorage, MultiObjectiveSamplerTestCase):
    """Every distribution in a two-objective study (unset directions are refused: test_evolution.py)."""


def test_every_suite_case_has_a_mirror() -> None:
    cases = {name for case in (BasicSamplerTestCase, MultiObjectiveSamplerTestCase) for name in dir(case)}
    assert {name for name in cases if name.startswith("test_")} == MIRRORS.keys()


def _suite_values(case: Callable[..., None], argname: str) -> list[Any]:
    """The values a suite case is parametrized with."""
    marks = [m for m in getattr(case, "pytestmark", []) if m.name == "parametrize" and m.args[0] == argname]
    assert marks, f"{case.__name__} is no longer parametrized by {argname}"
    return list(marks[0].args[1])


@pytest.mark.parametrize(
    "distribution", _suite_values(MultiObjectiveSamplerTestCase.test_multi_objective_sample_independent, "distribution")
)
def test_multi_objective_suite_shapes_evolve(distribution: BaseDistribution) -> None:
    """The multi-objective case's distributions through a whole study: after the warm-up (a
    tournament's worth), every trial is a mutation of a population member, within range."""
    outside: list[str] = []
    sampler = _sampler(_suggesting(x=distribution), outside, population_size=4, tournament_size=2)
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        value = float(distribution.to_internal_repr(_suggest(trial, "x", distribution)))
        return value, value

    study.optimize(objective, n_trials=10)
    assert _mutations(study, warm_up=2) == 8 and not outside
    for trial in study.trials:
        assert distribution._contains(distribution.to_internal_repr(trial.params["x"]))
        parent = lineage(trial)[1]
        assert parent is None or trial.params != study.trials[parent].params


def test_storage_fixture_really_switches_storage(storage: str) -> None:
    study = optuna.create_study()
    expected = {
        "inmemory": optuna.storages.InMemoryStorage,
        "sqlite": optuna.storages.RDBStorage,
        "journal": optuna.storages.JournalStorage,
    }[storage]
    assert isinstance(study._storage, (expected, optuna.storages._CachedStorage))
    if storage == "sqlite":
        assert isinstance(study._storage, optuna.storages._CachedStorage)
