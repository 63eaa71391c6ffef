"""The three-benchmark ranking's command line and its depth candidates."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import numpy as np


def _module() -> ModuleType:
    folder = Path(__file__).resolve().parents[2] / "benchmarks"
    sys.path.insert(0, str(folder))  # the script imports its neighbours
    try:
        return importlib.import_module("bench_cross_ranking")
    finally:
        sys.path.remove(str(folder))


def _size_reference(rng: np.random.Generator, semantic_noise: float = 1.0) -> dict[str, np.ndarray]:
    """A report's reference columns of 64 students: both counts and M_s follow one size, SynFlow is noise."""
    size = rng.normal(size=64)
    return {
        "params": size + rng.normal(scale=0.5, size=64),
        "flops": size + rng.normal(scale=1.5, size=64),
        "semantic": size + rng.normal(scale=semantic_noise, size=64),  # the cache's sign: higher is better
        "synflow": rng.normal(size=64),
    }


def test_score_names_keep_the_commas_inside_a_candidates_name() -> None:
    names = _module().score_names("z(params,flops,depth),depth,diswot-semantic-capacity,")
    assert names == ["z(params,flops,depth)", "depth", "diswot-semantic-capacity"]


def test_the_depth_candidates_rank_by_the_depth_where_the_sizes_tie() -> None:
    bench = _module()
    bench.add_candidates()
    assert bench.SIGNALS["depth"] == ("depth", "score", 1.0) and "depth" in bench.FAMILIES["depth"]
    rng = np.random.default_rng(0)
    ref = {s: rng.normal(size=64) for s in ("params", "flops", "depth", "semantic", "synflow")}
    # four students of one size; only the depth differs
    cols = {s: np.zeros(4) for s in ref} | {"depth": np.array([-1.0, 0.0, 1.0, 2.0])}
    for name in ("z(params,flops,depth)", "z(0.5semantic,0.5synflow,params/3,flops/3,depth/3)"):
        scores = bench.CANDIDATES[name](cols, ref)
        assert np.all(np.isfinite(scores)) and np.all(np.diff(scores) > 0), name


def test_the_leaning_candidate_is_the_registered_default() -> None:
    """The report's teacher-leaning candidate with squared agreements scores as ``diswot-teacher-balance`` does."""
    bench = _module()
    bench.add_candidates()
    rng = np.random.default_rng(1)
    ref = _size_reference(rng)
    cols = {s: rng.normal(size=16) for s in ref}
    mine = bench.CANDIDATES["tw(M_s): z(semantic,synflow)/2 x (1-max tau)+sizes by tau, squared"](cols, ref)
    assert np.allclose(mine, bench.CANDIDATES["diswot-teacher-balance"](cols, ref))
    plain = bench.CANDIDATES["diswot-teacher-capacity"]
    assert not np.allclose(mine, plain(cols, ref))


def test_the_retest_mixes_the_teacher_balance_with_the_counts_by_m_s_reliability() -> None:
    """M_s that two draws rank alike keeps ``diswot-teacher-balance``; M_s that they rank apart gives the counts."""
    bench = _module()
    bench.add_candidates()
    rng = np.random.default_rng(2)
    ref = _size_reference(rng)
    cols = {s: rng.normal(size=16) for s in ref}
    mixed = bench.CANDIDATES["retest: default by reliability, else z(params,flops)"]
    default, counts = bench.CANDIDATES["diswot-teacher-balance"](cols, ref), bench.CANDIDATES["z(params,flops)"]
    same = ref | {"semantic@test": ref["semantic"], "semantic@retest": ref["semantic"]}
    assert bench.retest_reliability(same) == 1.0 and np.allclose(mixed(cols, same), default)
    apart = ref | {"semantic@test": ref["semantic"], "semantic@retest": -ref["semantic"]}
    assert bench.retest_reliability(apart) == 0.0 and np.allclose(mixed(cols, apart), counts(cols, ref))
    half = ref | {"semantic@test": ref["semantic"], "semantic@retest": ref["semantic"] + rng.normal(size=64)}
    rel = bench.retest_reliability(half)
    assert 0 < rel < 1 and np.allclose(mixed(cols, half), rel * default + (1 - rel) * counts(cols, ref))


def test_the_registered_retest_score_is_the_candidate_judged_by_both_draws() -> None:
    """``diswot-retest-balance`` in the report (the reference's second draw passed on) scores as the
    teacher-weighted candidate whose judge is the mean rank of M_s over both draws, and differs from the default."""
    bench = _module()
    bench.add_candidates()
    rng = np.random.default_rng(3)
    ref = _size_reference(rng, semantic_noise=2.0)
    ref |= {"semantic@test": ref["semantic"], "semantic@retest": ref["params"] + rng.normal(scale=2.0, size=64)}
    cols = {s: rng.normal(size=16) for s in ("params", "flops", "semantic", "synflow")}
    mine = bench.CANDIDATES["retest: tb judged by both draws"](cols, ref)
    assert np.allclose(mine, bench.CANDIDATES["diswot-retest-balance"](cols, ref))
    assert not np.allclose(mine, bench.CANDIDATES["diswot-teacher-balance"](cols, ref))
