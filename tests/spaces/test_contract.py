"""The Space contract, checked on every registered space with real Optuna trials."""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution

from diswot.spaces import SPACES, ArchError, FeatureNetwork, Limits, Space, UnknownNameError, get_space

SPACE_NAMES = ["s0", "nb201", "s2-cifar", "s2-imagenet", "macro", "autoformer-ti", "pit-ti"]
N_RANDOM = {"s0": 30, "nb201": 40, "s2-cifar": 30, "s2-imagenet": 30, "macro": 30, "autoformer-ti": 30, "pit-ti": 30}


@pytest.fixture(params=SPACE_NAMES)
def space(request: pytest.FixtureRequest) -> Space:
    return get_space(request.param)


def test_registry_lists_every_space() -> None:
    assert SPACES.names() == SPACE_NAMES
    with pytest.raises(UnknownNameError, match="s2-cifar"):
        get_space("s2-cifr")
    with pytest.raises(ValueError, match="already registered"):
        SPACES.register("s0", SPACES.get("s0"))


def test_space_attributes(space: Space) -> None:
    assert space.name in SPACE_NAMES
    assert isinstance(space.default_limits, Limits)
    expected = {"s0": 64, "nb201": 64, "macro": 1280}.get(space.name)
    assert space.fixed_feature_width == expected


def test_suggest_params_round_trip(space: Space, random_archs) -> None:
    for params, arch in random_archs(space, N_RANDOM[space.name]):
        hash(arch)
        assert space.from_params(params) == arch
        assert space.from_params(space.to_params(arch)) == arch
        if space.name != "nb201":  # random NB201 cells may be disconnected (see test_nb201)
            assert space.check(arch) is None


def test_param_naming_convention(space: Space) -> None:
    """Roles by suffix: .kernel = categorical of odd ints (0: no block, the identity), .width = int
    with a step that is a multiple of 8 (8, or 24 for AutoFormer's 192/216/240), .depth = int."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen: set[str] = set()
    for _ in range(20):
        trial = study.ask()
        space.suggest(trial)
        for name, dist in trial.distributions.items():
            assert "." in name, name
            role = name.rsplit(".", 1)[1]
            seen.add(role)
            if role == "kernel":
                assert isinstance(dist, CategoricalDistribution)
                assert all(isinstance(c, int) and (c % 2 == 1 or c == 0) for c in dist.choices)
            elif role == "width":
                assert isinstance(dist, IntDistribution) and dist.step % 8 == 0
            elif role == "depth":
                assert isinstance(dist, IntDistribution)
            else:
                assert isinstance(dist, CategoricalDistribution)
        study.tell(trial, 0.0)
    assert seen


def test_encode_decode_round_trip(space: Space, random_archs) -> None:
    for _, arch in random_archs(space, N_RANDOM[space.name], seed=3):
        text = space.encode(arch)
        assert space.decode(text) == arch
        assert space.encode(space.decode(text)) == text


@pytest.mark.parametrize("text", ["", "garbage", "ResNet[7,1]", "|none~0|", "C8"])
def test_decode_garbage_raises_with_expected_form(space: Space, text: str) -> None:
    with pytest.raises(ArchError) as info:
        space.decode(text)
    assert "e.g." in str(info.value) or "expected" in str(info.value)


def test_count_params_matches_built_network(space: Space, random_archs, built_params) -> None:
    for i, (_, arch) in enumerate(random_archs(space, N_RANDOM[space.name], seed=5)):
        k = 10 if i % 3 == 0 else None
        assert space.count_params(arch, k) == built_params(space, arch, k), space.encode(arch)


def test_representative_is_an_equivalent_fixed_point(space: Space, random_archs) -> None:
    for _, arch in random_archs(space, N_RANDOM[space.name], seed=11):
        same = space.representative(arch)
        assert space.representative(same) == same
        assert space.count_params(same) == space.count_params(arch)
        assert space.check(same) == space.check(arch)
        if space.name != "nb201":  # no two students of the other spaces are equivalent
            assert same == arch


def test_count_params_is_cheap(space: Space, random_archs) -> None:
    archs = [a for _, a in random_archs(space, 20, seed=7)]
    start = time.perf_counter()
    for _ in range(50):
        for arch in archs:
            space.count_params(arch)
    per_call = (time.perf_counter() - start) / (50 * len(archs))
    assert per_call < 200e-6, f"count_params takes {per_call * 1e6:.0f} us"


def test_build_gives_a_feature_network(space: Space) -> None:
    arch = space.smallest()
    net = space.build(arch, 7)
    assert isinstance(net, FeatureNetwork)
    assert net.classifier.out_features == 7


def test_limits_reasons(space: Space) -> None:
    arch = space.smallest()
    params, layers = space.count_params(arch), space.count_layers(arch)
    assert space.check(arch, Limits(max_params=params, max_layers=layers)) is None
    reason = space.check(arch, Limits(max_params=params - 1))
    assert reason is not None and "parameters exceed" in reason
    reason = space.check(arch, Limits(max_layers=layers - 1))
    assert reason is not None and "layers exceed" in reason
    with pytest.raises(ArchError, match="exceed"):
        space.validate(arch, Limits(max_params=params - 1))


def test_smallest_is_valid(space: Space) -> None:
    arch = space.smallest()
    assert space.check(arch) is None


def test_foreign_arch_is_rejected(space: Space) -> None:
    other = get_space("nb201" if space.name == "s0" else "s0").smallest()
    assert space.check(other) is not None
    with pytest.raises(ArchError):
        space.count_params(other)
    with pytest.raises(ArchError):
        space.encode(other)


def test_from_params_rejects_bad_params(space: Space) -> None:
    with pytest.raises(ArchError, match="not a"):
        space.from_params({})
