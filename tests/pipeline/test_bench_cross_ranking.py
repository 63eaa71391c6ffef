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
