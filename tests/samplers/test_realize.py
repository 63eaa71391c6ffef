"""Realizing candidates through a (conditional) suggest function on the recording trial."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from diswot.samplers._realize import RecordingTrial, is_compatible, random_valid_params, realize, sample_value


def test_random_realization_is_valid_and_conditional(toy: SimpleNamespace) -> None:
    for seed in range(30):
        params, dists = realize(toy.space, np.random.RandomState(seed))
        assert params.keys() == dists.keys()
        assert all(is_compatible(dists[n], v) for n, v in params.items())
        for i in range(1, 4):
            present = f"b{i}.width" in params
            assert present == (params[f"b{i}.depth"] > 0)
        toy.space(optuna.trial.FixedTrial(params))  # the space accepts the candidate


def test_plan_values_are_used_when_compatible(toy: SimpleNamespace) -> None:
    plan = {
        "stem.width": 16,
        "b1.depth": 2,
        "b1.type": "basic",
        "b1.kernel": 7,
        "b1.width": 96,
        "b1.stride": 2,
        "b2.depth": 0,
        "b3.depth": 0,
        "b9.depth": 5,
    }
    params, _ = realize(toy.space, np.random.RandomState(0), plan)
    assert params == {k: v for k, v in plan.items() if k != "b9.depth"}  # unrequested params drop

    bad = dict(plan, **{"b1.width": 12, "b1.kernel": 4})  # off the step-8 grid, not a choice
    params, _ = realize(toy.space, np.random.RandomState(0), bad)
    assert params["b1.width"] % 8 == 0 and params["b1.kernel"] in (3, 5, 7)


def test_new_block_params_copy_the_nearest_preceding_block(toy: SimpleNamespace) -> None:
    plan = {
        "stem.width": 16,
        "b1.depth": 2,
        "b1.type": "bottleneck",
        "b1.kernel": 7,
        "b1.width": 96,
        "b1.stride": 2,
        "b2.depth": 0,
        "b3.depth": 1,
    }  # b3 newly present
    params, _ = realize(toy.space, np.random.RandomState(0), plan, inherit=True)
    assert {params[f"b3.{r}"] for r in ("type", "kernel", "width", "stride")} == {"bottleneck", 7, 96, 2}
    random_fill = [realize(toy.space, np.random.RandomState(s), plan)[0]["b3.width"] for s in range(10)]
    assert len(set(random_fill)) > 1  # without inherit the new params are random


def test_forced_values_win(toy: SimpleNamespace) -> None:
    params, _ = realize(toy.space, np.random.RandomState(0), {"b1.depth": 2}, forced={"b1.depth": 0})
    assert params["b1.depth"] == 0 and "b1.width" not in params


def test_recording_trial_repeats_and_rejects() -> None:
    trial = RecordingTrial({}, np.random.RandomState(0))
    x = trial.suggest_int("a.width", 8, 64, step=8)
    assert trial.suggest_int("a.width", 8, 64, step=8) == x
    with pytest.raises(ValueError):
        trial.suggest_categorical("a.width", [1, 2])
    for call in (
        lambda: trial.report(1.0, 0),
        trial.should_prune,
        lambda: trial.set_user_attr("k", 1),
        lambda: trial.user_attrs,
        lambda: trial.number,
    ):
        with pytest.raises((RuntimeError, NotImplementedError)):
            call()
    with pytest.raises(RuntimeError, match="may only call trial.suggest_"):
        trial.report(1.0, 0)
    assert trial.suggest_float("lr", 1e-4, 1.0, log=True) > 0
    assert set(trial.params) == {"a.width", "lr"} == set(trial.distributions)


@pytest.mark.parametrize(
    "dist",
    [
        IntDistribution(1, 1000, log=True),
        IntDistribution(8, 2048, step=8),
        FloatDistribution(1e-5, 1.0, log=True),
        FloatDistribution(0.0, 1.0, step=0.1),
        FloatDistribution(-2.0, 3.0),
        CategoricalDistribution([None, "a", 3]),
    ],
)
def test_sample_value_is_in_the_distribution(dist: optuna.distributions.BaseDistribution) -> None:
    rng = np.random.RandomState(0)
    assert all(is_compatible(dist, sample_value(dist, rng)) for _ in range(200))


def test_random_valid_params_repairs_and_reports(toy: SimpleNamespace) -> None:
    calls = []

    def constraint(params: dict) -> str | None:
        calls.append(params)
        return toy.constraint(params)

    for seed in range(20):
        params = random_valid_params(toy.space, constraint, np.random.RandomState(seed))
        assert toy.constraint(params) is None
    assert any(toy.constraint(p) is not None for p in calls)  # some draws needed repair
    with pytest.raises(RuntimeError, match="loosen the limits"):
        random_valid_params(toy.space, lambda p: "never", np.random.RandomState(0), max_draws=3)
    assert random_valid_params(toy.space, None, np.random.RandomState(0))
