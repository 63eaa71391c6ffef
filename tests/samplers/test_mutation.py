"""The pure mutation operators (DisWOT Algorithm 1) on plain dicts and distributions."""

from __future__ import annotations

import numpy as np
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from diswot.samplers._mutation import (
    DEFAULT_WIDTH_FACTORS,
    adjacent_value,
    group_blocks,
    mutate,
    mutate_width,
    other_choice,
    param_block,
    param_role,
    scale_width,
    shrink,
    smaller_value,
)

WIDTH = IntDistribution(8, 2048, step=8)
DEPTH_S0 = IntDistribution(1, 7, step=2)
KERNEL = CategoricalDistribution([3, 5, 7])
NB201_OPS = CategoricalDistribution(["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"])

S2_PARAMS = {
    "stem.width": 32,
    "stage1.depth": 2,
    "stage1.type": "basic",
    "stage1.kernel": 3,
    "stage1.width": 64,
    "stage1.stride": 1,
    "stage2.depth": 1,
    "stage2.type": "bottleneck",
    "stage2.kernel": 5,
    "stage2.width": 128,
    "stage2.stride": 2,
    "head.width": 512,
}
S2_DISTS = {
    name: {
        "width": WIDTH,
        "depth": IntDistribution(0, 8),
        "kernel": KERNEL,
        "type": CategoricalDistribution(["basic", "bottleneck"]),
        "stride": CategoricalDistribution([1, 2]),
    }[name.rpartition(".")[2]]
    for name in S2_PARAMS
}


def rngs(n: int = 200) -> list[np.random.RandomState]:
    return [np.random.RandomState(seed) for seed in range(n)]


def changed_blocks(parent: dict, child: dict) -> set[str]:
    return {param_block(n) for n in parent.keys() | child.keys() if parent.get(n) != child.get(n)}


def test_names_split_into_block_and_role() -> None:
    assert param_block("stage3.width") == "stage3" and param_role("stage3.width") == "width"
    assert param_role("stage1.kernel") == "kernel" and param_role("s.depth") == "depth"
    assert param_role("stage1.stride") == "other" and param_role("cell.1<-0") == "other"
    assert param_block("cell.1<-0") == "cell" and param_block("x") == ""
    blocks = group_blocks(["stem.width", "stage1.depth", "stage1.width", "head.width"])
    assert blocks == {"stem": ["stem.width"], "stage1": ["stage1.depth", "stage1.width"], "head": ["head.width"]}


@pytest.mark.parametrize(
    ("value", "factor", "expected"),
    [
        (64, 1.25, 80),
        (64, 0.67, 40),  # 42.88 -> nearest multiple of 8
        (64, 1.5, 96),
        (100, 0.8, 80),
        (8, 0.67, 8),  # never below one multiple
        (8, 1.5, 16),  # 12 is halfway: halves round up
        (2000, 1.5, 2048),  # clamped to max_width
    ],
)
def test_scale_width_rounds_to_multiple_of_8_and_clamps(value: int, factor: float, expected: int) -> None:
    assert scale_width(value, WIDTH, factor, 8, 2048) == expected


def test_scale_width_respects_distribution_and_max_width() -> None:
    assert scale_width(200, IntDistribution(8, 256, step=8), 1.5, 8, 2048) == 256
    assert scale_width(512, WIDTH, 1.5, 8, 600) == 600
    assert scale_width(64, IntDistribution(16, 1024, step=16), 1.25, 8, 2048) == 80
    assert scale_width(64, IntDistribution(16, 1024, step=16), 0.8, 8, 2048) == 48
    assert scale_width(64, CategoricalDistribution([16, 32, 64, 128]), 1.5, 8, 2048) == 64
    assert scale_width(64, CategoricalDistribution([16, 32, 64, 128]), 1.5, 8, 100) == 64
    assert scale_width(100.0, FloatDistribution(8.0, 110.0), 1.5, 8, 2048) == 110.0


def test_mutate_width_always_changes_when_it_can() -> None:
    for rng in rngs(50):
        new = mutate_width(64, WIDTH, rng, (0.67, 0.8, 1.25, 1.5), 8, 2048)
        assert new in {40, 48, 56, 80, 96} and new % 8 == 0
        assert mutate_width(8, WIDTH, rng, (0.67, 0.8, 1.25, 1.5), 8, 2048) == 16
    assert mutate_width(2048, WIDTH, np.random.RandomState(0), (1.25, 1.5), 8, 2048) == 2048


def test_depth_moves_to_an_adjacent_value_for_step_2_ints() -> None:
    seen = {adjacent_value(3, DEPTH_S0, rng) for rng in rngs(50)}
    assert seen == {1, 5}
    assert {adjacent_value(1, DEPTH_S0, rng) for rng in rngs(20)} == {3}
    assert {adjacent_value(7, DEPTH_S0, rng) for rng in rngs(20)} == {5}
    unordered = CategoricalDistribution([7, 1, 5, 3])
    assert {adjacent_value(3, unordered, rng) for rng in rngs(50)} == {1, 5}
    assert adjacent_value(4, IntDistribution(4, 4), np.random.RandomState(0)) == 4


def test_other_choice_is_always_different() -> None:
    assert {other_choice(5, KERNEL, rng) for rng in rngs(50)} == {3, 7}
    assert {other_choice(3, DEPTH_S0, rng) for rng in rngs(80)} == {1, 5, 7}
    assert other_choice("none", CategoricalDistribution(["none"]), np.random.RandomState(0)) == "none"
    floats = {other_choice(0.5, FloatDistribution(0.0, 1.0, step=0.25), rng) for rng in rngs(80)}
    assert floats <= {0.0, 0.25, 0.5, 0.75, 1.0} and len(floats) > 1


def test_smaller_value() -> None:
    assert {smaller_value(7, KERNEL, rng) for rng in rngs(50)} == {3, 5}
    assert smaller_value(3, KERNEL, np.random.RandomState(0)) == 3
    assert smaller_value(5, DEPTH_S0, np.random.RandomState(0)) == 3
    assert smaller_value(1, DEPTH_S0, np.random.RandomState(0)) == 1


def test_mutate_changes_exactly_one_block_of_an_s2_parent() -> None:
    for rng in rngs():
        child = mutate(S2_PARAMS, S2_DISTS, rng)
        assert child is not None and child != S2_PARAMS
        assert child.keys() == S2_PARAMS.keys()
        (block,) = changed_blocks(S2_PARAMS, child)
        if block.startswith("stage"):
            assert child[f"{block}.kernel"] != S2_PARAMS[f"{block}.kernel"]
            assert child[f"{block}.width"] != S2_PARAMS[f"{block}.width"]
            assert abs(child[f"{block}.depth"] - S2_PARAMS[f"{block}.depth"]) == 1
        for name, value in child.items():
            if param_role(name) == "width":
                assert value % 8 == 0 and 8 <= value <= 2048


def test_mutate_reaches_other_params_with_small_probability() -> None:
    stage_children = [
        c for c in (mutate(S2_PARAMS, S2_DISTS, rng) for rng in rngs(600)) if c and c["stage1.depth"] != 2
    ]
    type_changed = sum(c["stage1.type"] != "basic" or c["stage1.stride"] != 1 for c in stage_children)
    assert 0.05 < type_changed / len(stage_children) < 0.4
    always = mutate(S2_PARAMS, S2_DISTS, np.random.RandomState(1), other_prob=1.0)
    never = [mutate(S2_PARAMS, S2_DISTS, rng, other_prob=0.0) for rng in rngs(50)]
    assert always is not None and all(c["stage1.type"] == "basic" and c["stage2.type"] == "bottleneck" for c in never)


def test_mutate_s0_depths_and_nb201_cells() -> None:
    s0 = {"stage1.depth": 1, "stage2.depth": 7, "stage3.depth": 3}
    s0_dists = dict.fromkeys(s0, DEPTH_S0)
    for rng in rngs():
        child = mutate(s0, s0_dists, rng)
        assert child is not None and sum(child[n] != s0[n] for n in s0) == 1
        assert all(abs(child[n] - s0[n]) in (0, 2) for n in s0)
    cell = {f"cell.{j}<-{i}": "nor_conv_3x3" for j in range(1, 4) for i in range(j)}
    for rng in rngs():
        child = mutate(cell, dict.fromkeys(cell, NB201_OPS), rng)
        assert child is not None and sum(child[n] != cell[n] for n in cell) == 1


def test_mutate_gives_none_when_nothing_can_change() -> None:
    params = {"a.width": 8, "a.kernel": 3}
    dists = {"a.width": IntDistribution(8, 8), "a.kernel": CategoricalDistribution([3])}
    assert mutate(params, dists, np.random.RandomState(0)) is None
    assert mutate({}, {}, np.random.RandomState(0)) is None


def test_shrink_never_grows_and_stops_at_the_minimum() -> None:
    for rng in rngs():
        child = shrink(S2_PARAMS, S2_DISTS, rng)
        assert child is not None and child != S2_PARAMS
        for name in S2_PARAMS:
            if param_role(name) in ("width", "depth", "kernel"):
                assert child[name] <= S2_PARAMS[name]
            else:
                assert child[name] == S2_PARAMS[name]
    smallest = {"a.width": 8, "a.depth": 1, "a.kernel": 3, "a.type": "basic"}
    dists = {
        "a.width": WIDTH,
        "a.depth": DEPTH_S0,
        "a.kernel": KERNEL,
        "a.type": CategoricalDistribution(["basic", "bottleneck"]),
    }
    assert shrink(smallest, dists, np.random.RandomState(0)) is None


def test_mutation_is_deterministic_given_the_rng() -> None:
    a = [mutate(S2_PARAMS, S2_DISTS, np.random.RandomState(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]


def test_width_on_a_coarse_grid_moves_one_choice() -> None:
    """AutoFormer's widths 192/216/240 (step 24): the paper's factors would jump 192 -> 240."""
    dist = IntDistribution(192, 240, step=24)
    assert [scale_width(192, dist, f, 8, 2048) for f in (0.67, 0.8, 1.25, 1.5)] == [192, 192, 216, 216]
    assert [scale_width(216, dist, f, 8, 2048) for f in (0.8, 1.25)] == [192, 240]
    assert scale_width(240, dist, 1.5, 8, 2048) == 240
    rng = np.random.RandomState(0)
    reached = {mutate_width(216, dist, rng, DEFAULT_WIDTH_FACTORS, 8, 2048) for _ in range(40)}
    assert reached == {192, 240}
    assert {shrink({"embed.width": 240}, {"embed.width": dist}, rng)["embed.width"] for _ in range(5)} == {216}
    # a fine grid (step 8) scales as before
    assert scale_width(64, IntDistribution(8, 2048, step=8), 1.5, 8, 2048) == 96
