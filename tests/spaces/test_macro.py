"""``macro``: NAS-Bench-Macro's MobileNetV2 space, checked against the benchmark's own table."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch

from diswot.pipeline.benchmark_truth import macro_table
from diswot.samplers._mutation import mutate, shrink
from diswot.spaces import ArchError, Limits, MacroArch, get_space

# The benchmark's parameter counts for 10 classes, as the product owner quoted them.
PUBLISHED = {"02012100": 890_666, "11111221": 2_181_386, "00011110": 1_118_378}


@pytest.mark.parametrize("digits", list(PUBLISHED))
def test_published_param_counts(digits: str) -> None:
    space = get_space("macro")
    arch = space.decode(digits)
    assert space.count_params(arch, 10) == PUBLISHED[digits]
    assert sum(p.numel() for p in space.build(arch, 10).parameters()) == PUBLISHED[digits]


def test_every_param_count_equals_the_benchmark_table() -> None:
    space = get_space("macro")
    table = macro_table("cifar10")
    archs = list(space.enumerate())
    assert len(archs) == len(set(archs)) == len(table) == 3**8
    assert {space.encode(a) for a in archs} == set(table)
    assert all(space.count_params(a, 10) == table[space.encode(a)]["params"] for a in archs)


def test_flops_are_twice_the_benchmark_multiply_adds() -> None:
    from diswot.proxies import arch_flops

    space = get_space("macro")
    table = macro_table("cifar10")
    for digits in ("02012100", "00000000", "22222222"):
        assert arch_flops(space, space.decode(digits), 10, 32) == 2 * table[digits]["flops"]


def test_built_counts_match_analytic_on_a_sample() -> None:
    space = get_space("macro")
    rng = np.random.default_rng(0)
    for ops in rng.integers(0, 3, size=(6, 8)):
        arch = MacroArch(tuple(int(o) for o in ops))
        assert space.count_params(arch, 100) == sum(p.numel() for p in space.build(arch, 100).parameters())


def test_network_shapes_and_identity_layers() -> None:
    space = get_space("macro")
    net = space.build(space.decode("00000000"), 10)
    out = net.forward_all(torch.randn(2, 3, 32, 32))
    assert out.features.shape == (2, 1280, 4, 4) and out.pooled.shape == (2, 1280) and out.logits.shape == (2, 10)
    # identities inside a stage are parameter-free; stride-2 identities are 1x1 convs
    assert sum(isinstance(m, torch.nn.Identity) for m in net.layers) == 5


def test_encode_decode_params_and_layers() -> None:
    space = get_space("macro")
    arch = space.decode(" 02012100 ")
    assert arch == MacroArch((0, 2, 0, 1, 2, 1, 0, 0)) and space.encode(arch) == "02012100"
    assert space.to_params(arch)["layer2.kernel"] == 5 and space.to_params(arch)["layer1.kernel"] == 0
    assert space.from_params(space.to_params(arch)) == arch
    assert space.count_layers(space.decode("00000000")) == 6  # stem, 3 stride-2 convs, head conv, FC
    assert space.count_layers(space.decode("22222222")) == 1 + 3 * 8 + 2
    assert space.smallest() == space.decode("00000000")


@pytest.mark.parametrize("text", ["0201210", "020121003", "02012130", "ResNet[7,1,3]", ""])
def test_bad_arch_strings_are_one_line(text: str) -> None:
    with pytest.raises(ArchError, match="8 digits from 0, 1, 2") as info:
        get_space("macro").decode(text)
    assert "\n" not in str(info.value)


def test_mutation_changes_one_layer_and_shrink_makes_it_smaller() -> None:
    space = get_space("macro")
    trial = optuna.create_study().ask()
    arch = space.suggest(trial)
    params, dists = dict(trial.params), dict(trial.distributions)
    rng = np.random.RandomState(0)
    for _ in range(20):
        child = mutate(params, dists, rng)
        assert child is not None and sum(child[k] != params[k] for k in params) == 1
        space.from_params(child)  # stays in the space
    big = space.to_params(space.decode("22222222"))
    small = shrink(big, dists, rng)
    assert small is not None
    assert space.count_params(space.from_params(small)) < space.count_params(arch.__class__((2,) * 8))
    assert space.check(space.decode("22222222"), Limits(max_params=2_000_000)) is not None
