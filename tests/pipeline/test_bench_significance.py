"""The cross-benchmark ranking's noise figures: the paired bootstrap and the one-run ceiling."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from diswot.pipeline.benchmark_truth import benchmark_truth
from diswot.spaces import get_space


def _module(name: str = "_significance") -> ModuleType:
    """A script of ``benchmarks/``, loaded by path (the folder is not a package)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name.strip('_')}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_bootstrap_tells_a_better_score_from_a_worse_one() -> None:
    """The truth itself beats noisy counts in every resample; its reverse never does."""
    rng = np.random.default_rng(1)
    acc = rng.normal(70, 2, 80)
    params = np.exp(rng.normal(12, 1, 80))
    scores = {
        "truth": acc.copy(),
        "reversed": -acc,
        "params": acc + rng.normal(0, 2, 80),
        "flops": acc + rng.normal(0, 3, 80),
    }
    out = _module().bootstrap_margins(scores, acc, params, names=["truth", "reversed"], resamples=200)
    assert out["truth"]["p_tau"] == 1.0 and out["truth"]["tau_lo"] > 0
    assert out["truth"]["regret_lo"] >= 0  # the truth's pick is the best in every budget
    assert out["reversed"]["p_tau"] == 0.0 and out["reversed"]["tau_hi"] < 0
    assert out["truth"]["tau_lo"] <= out["truth"]["tau_hi"]


def test_one_run_ceiling_on_s0_is_the_vanilla_accuracy() -> None:
    """S0's packaged table: vanilla accuracy ranks the distilled accuracy at Kendall 0.836."""
    space = get_space("s0")
    truth = benchmark_truth("s0:cifar100-kd", space)
    params = np.array([space.count_params(a, 100) for a in truth.archs], dtype=float)
    out = _module().one_run_ceiling("s0", list(truth.names), list(truth.archs), {"params": np.log(params)}, params)
    assert out["one run"]["kendall"] == pytest.approx(0.8356, abs=1e-3)
    assert out["params"]["kendall"] == pytest.approx(0.8729, abs=1e-3)
    assert out["one run"]["regret_mean"] > out["params"]["regret_mean"]


def test_one_run_ceiling_on_macro_uses_the_other_seeds() -> None:
    """NAS-Bench-Macro: a seed's accuracy ranks the mean of the other two far better than size."""
    space = get_space("macro")
    truth = benchmark_truth("macro:cifar10", space, sample=60, seed=0)
    params = np.array([space.count_params(a, 10) for a in truth.archs], dtype=float)
    out = _module().one_run_ceiling("macro", list(truth.names), list(truth.archs), {"params": np.log(params)}, params)
    assert out["runs"] == "seed k ranks the mean of the other 2"
    assert out["one run"]["kendall"] > 0.8 > out["params"]["kendall"]


def test_truth_profile_reads_opposite_ends(tmp_path: Path) -> None:
    """S0's distilled accuracy grows with the last stage, NAS-Bench-Macro's with the first layers."""
    import json

    bench = _module("bench_truth_profile")
    out = tmp_path / "profile.json"
    assert bench.main(["--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    s0 = doc["s0"]["profiles"]["truth:kd"]["gain"]
    macro = doc["macro"]["profiles"]["truth:vanilla"]["gain"]
    assert s0[0] < s0[1] < s0[2] and s0[2] == pytest.approx(6.46, abs=0.01)
    assert min(macro[:3]) > max(macro[6:]) and macro[0] == pytest.approx(2.69, abs=0.01)
    assert doc["s0"]["kd_gain_kendall"][2] == pytest.approx(0.54, abs=0.01)
