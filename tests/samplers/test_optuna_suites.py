"""Optuna's own sampler conformance suites (``optuna.testing.pytest_samplers``) on EvolutionSampler.

The suites create their studies with ``optuna.create_study(sampler=...)``; the ``storage``
fixture makes that default to each storage in turn, so every case runs in memory, on SQLite and
on a journal file. The cases that run a hundred trials or more (:data:`HEAVY`) are ``slow`` on
the file storages (``-m slow`` runs them); in memory every case runs by default. The sampler's
suggest function suggests nothing, so every parameter the suites ask for takes the sampler's
fallback path (a uniform draw); the evolutionary path is covered by ``test_evolution.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase, MultiObjectiveSamplerTestCase

from diswot.samplers import EvolutionSampler

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
def storage(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
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
        return create(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(optuna, "create_study", create_on_storage)
    monkeypatch.setattr(optuna.study, "create_study", create_on_storage)
    yield kind


def _suggest_nothing(trial: optuna.trial.BaseTrial) -> None:
    """An empty search space: every parameter the suites suggest is sampled by the fallback."""


class _OnEveryStorage:
    @pytest.fixture
    def sampler(self, storage: str) -> Callable[[], BaseSampler]:
        return functools.partial(EvolutionSampler, suggest_func=_suggest_nothing, seed=0)


class TestBasicSampler(_OnEveryStorage, BasicSamplerTestCase):
    """Floats, ints, categoricals, conditional and fixed params, NaN values, dynamic ranges."""


class TestMultiObjective(_OnEveryStorage, MultiObjectiveSamplerTestCase):
    """Every distribution in a two-objective study (unset directions are refused: test_evolution.py)."""


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
