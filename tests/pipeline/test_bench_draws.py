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
    bench = _module()
    config = SearchConfig(**{**SMALL_CONFIG, "repeats": 3})
    setup = make_scoring(config)
    proxy = setup.scorer.proxy
    sample = draw_reference(setup.space, setup.limits, setup.num_classes, size=8, seed=config.seed)
    students = [setup.space.decode(a) for a in ("ResNet[1,1,1]", "ResNet[3,1,5]", "ResNet[7,7,7]")]
    reference, raws = bench.raw_draws(setup, sample), bench.raw_draws(setup, students)
    one = build_reference(make_scoring(replace(config, repeats=1)).scorer, sample)
    for k in (1, 2, 3):
        study = make_scoring(replace(config, repeats=k))
        study.scorer.reference = build_reference(study.scorer, sample)
        expected = [study.scorer.score(a).score for a in students]
        assert list(bench.scores_averaged_k(proxy, raws, reference, k)) == pytest.approx(expected, rel=1e-9), k
        study.scorer.reference = one  # the pick: k repeats ranked against a study of one repeat's reference
        expected = [study.scorer.score(a).score for a in students]
        assert list(bench.scores_of_the_pick(proxy, raws, reference, k)) == pytest.approx(expected, rel=1e-9), k
    averaged_terms = bench.scores_of_k(proxy, raws, reference, 3)
    assert list(averaged_terms) != pytest.approx(list(bench.scores_averaged_k(proxy, raws, reference, 3)))
