"""``benchmarks/bench_draws.py`` ranks the mean of k draws exactly as a study with ``--repeats k`` does."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest

from diswot.pipeline import SearchConfig
from diswot.pipeline.assembly import draw_reference, make_scoring
from diswot.pipeline.reference import build_reference

from .conftest import SMALL_CONFIG


def _module() -> ModuleType:
    folder = Path(__file__).resolve().parents[2] / "benchmarks"
    sys.path.insert(0, str(folder))  # the script imports its neighbour bench_cross_ranking
    try:
        spec = importlib.util.spec_from_file_location("bench_draws", folder / "bench_draws.py")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    finally:
        sys.path.remove(str(folder))
    return module


def test_the_scores_of_k_draws_are_what_a_study_with_k_repeats_and_its_pick_score() -> None:
    import optuna

    from diswot.pipeline.pick import pick_scores

    bench = _module()
    config = SearchConfig(**{**SMALL_CONFIG, "repeats": 3})
    setup = make_scoring(config)
    proxy = setup.scorer.proxy
    sample = draw_reference(setup.space, setup.limits, setup.num_classes, size=8, seed=config.seed)
    names = ("ResNet[1,1,1]", "ResNet[3,1,5]", "ResNet[7,7,7]")
    students = [setup.space.decode(a) for a in names]
    reference, raws = bench.raw_draws(setup, sample), bench.raw_draws(setup, students)
    one = make_scoring(replace(config, repeats=1))  # a study of one repeat, its trials and its pick
    one.scorer.reference = build_reference(one.scorer, sample)
    study = optuna.create_study(direction="maximize")
    for name, arch in zip(names, students):
        result = one.scorer.score(arch)
        study.add_trial(optuna.trial.create_trial(value=result.score, user_attrs={"arch": name, **result.terms}))

    def rescoring(repeats: int):  # type: ignore[no-untyped-def]
        return make_scoring(replace(config, repeats=repeats), reference=one.scorer.reference)

    for k in (1, 2, 3):
        more = make_scoring(replace(config, repeats=k))
        more.scorer.reference = build_reference(more.scorer, sample)
        expected = [more.scorer.score(a).score for a in students]
        assert list(bench.scores_averaged_k(proxy, raws, reference, k)) == pytest.approx(expected, rel=1e-9), k
        picked = pick_scores(one, study.trials, rescoring=rescoring, top=3, repeats=k)
        expected = [picked[a] for a in names]
        assert list(bench.scores_of_the_pick(proxy, raws, reference, k)) == pytest.approx(expected, rel=1e-9), k
    averaged_terms = bench.scores_of_k(proxy, raws, reference, 3)
    assert list(averaged_terms) != pytest.approx(list(bench.scores_averaged_k(proxy, raws, reference, 3)))
    assert list(bench.scores_of_the_pick(proxy, raws, reference, 3)) != pytest.approx(
        list(bench.scores_averaged_one_draw(proxy, raws, reference, 3))
    )


def _grid_module() -> ModuleType:
    folder = Path(__file__).resolve().parents[2] / "benchmarks"
    spec = importlib.util.spec_from_file_location("bench_draws_grid", folder / "bench_draws_grid.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_the_grid_judges_each_weighting_by_its_worst_benchmark(tmp_path: Path) -> None:
    """A weighting of the log params alone ranks as ``params`` does: margin 0 where params is the better
    count. The draws are made up (the file format ``bench_draws.py --save-draws`` writes)."""
    import json

    import numpy as np

    grid = _grid_module()
    rng = np.random.default_rng(0)
    paths = []
    for name in ("a", "b"):
        params = rng.uniform(1e4, 1e6, 40)
        flops = params * rng.uniform(0.5, 2.0, 40)
        accuracy = np.log(params) + rng.normal(0, 0.3, 40)  # params is the better count

        def draws(n: int, p: np.ndarray, f: np.ndarray) -> list[list[dict[str, float]]]:
            return [
                [
                    {t: float(rng.normal()) for t in ("semantic", "relation", "synflow")}
                    | {"log_params": float(np.log(p[i])), "log_flops": float(np.log(f[i]))}
                    for _ in range(3)
                ]
                for i in range(n)
            ]

        saved = {
            "truth": name,
            "accuracy": accuracy.tolist(),
            "params": params.tolist(),
            "flops": flops.tolist(),
            "students": draws(40, params, flops),
            "reference": draws(16, rng.uniform(1e4, 1e6, 16), rng.uniform(1e4, 1e6, 16)),
        }
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(saved))
    out = tmp_path / "grid.json"
    assert grid.main([*map(str, paths), "--k", "2", "--grid", "0,1", "--top", "40", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["weightings"] == 31
    only_params = next(
        r for r in report["best"] if r["weights"] == {**dict.fromkeys(grid.SIGNALS, 0.0), "log_params": 1.0}
    )
    assert only_params["margins"] == {"a": pytest.approx(0.0, abs=1e-12), "b": pytest.approx(0.0, abs=1e-12)}
    assert all(r["worst"] == min(r["margins"].values()) for r in report["best"])
