"""``diswot-plus``: its raw terms, its rank against a stored reference sample, and resumed studies."""

from __future__ import annotations

import math

import optuna
import pytest

from diswot.pipeline.config import DEFAULT_PROXY, SearchConfig
from diswot.proxies import Reference, get_proxy
from diswot.pipeline.assembly import draw_reference
from diswot.storage.record import REFERENCE as REFERENCE_ATTR
from diswot.pipeline.assembly import attach_reference, make_scoring
from diswot.spaces import Limits, get_space

from .conftest import SMALL_CONFIG, SMALL_S0, run_cli

ARCH = "ResNet[3,1,5]"
SMALL = SMALL_CONFIG


def test_terms_equal_the_standalone_proxies() -> None:
    """One pass gives the paper's DisWOT, jacov and synflow exactly as their own proxies do."""
    arch = get_space("s0").decode(ARCH)
    terms = make_scoring(SearchConfig(proxy="diswot-plus", **SMALL)).scorer.raw(arch)[0]
    for name, term in (("diswot", "diswot"), ("jacov", "jacov"), ("synflow", "synflow")):
        alone = make_scoring(SearchConfig(proxy=name, **SMALL)).scorer.score(arch).score
        assert terms[term] == pytest.approx(alone, rel=1e-5), name
    diswot = make_scoring(SearchConfig(proxy="diswot", **SMALL)).scorer.score(arch).terms
    assert terms["semantic"] == pytest.approx(diswot["semantic"], rel=1e-5)
    assert terms["relation"] == pytest.approx(diswot["relation"], rel=1e-5)
    assert terms["log_params"] == pytest.approx(math.log(get_space("s0").count_params(arch, 10)))


def test_score_is_deterministic_and_needs_a_reference() -> None:
    arch = get_space("s0").decode(ARCH)
    values = []
    for _ in range(2):
        setup = make_scoring(SearchConfig(proxy="diswot-plus", **SMALL))
        values.append(setup.scorer.score(arch).score)  # its reference sample is scored when first needed
    assert values[0] == values[1] and math.isfinite(values[0]) and values[0] <= 0
    setup.scorer.reference = None  # a scorer with no sample (and nothing to build one from) cannot rank
    with pytest.raises(Exception, match="reference sample"):
        setup.scorer.score(arch)


def test_reference_ranks_smoothly() -> None:
    ref = Reference(tuple("abcde"), {"x": [1.0, 2.0, 3.0, 4.0, 5.0], "d": [5.0, 4.0, 3.0, 2.0, 1.0]})
    z = [ref.normal_score("x", v) for v in (0.0, 1.0, 2.5, 3.0, 5.0, 6.0, 9.0)]
    assert z == sorted(z) and len(set(z)) == len(z)  # strictly increasing, also beyond the range
    assert ref.normal_score("x", 3.0) == pytest.approx(0.0)  # the median
    assert ref.normal_score("d", 1.0, sign=-1.0) == pytest.approx(ref.normal_score("x", 5.0))
    lower = ref.log_rank_sum({"x": 4.0, "d": 2.0}, ["x", "d"], lower_is_better=["d"])
    higher = ref.log_rank_sum({"x": 4.0, "d": 4.0}, ["x", "d"], lower_is_better=["d"])
    assert lower > higher
    assert Reference.from_json(ref.to_json()) == ref
    with pytest.raises(ValueError):
        Reference(("a",), {"x": [1.0, 2.0]})


def test_reference_sample_is_seeded_and_within_limits() -> None:
    space = get_space("s2-cifar")
    limits = Limits(max_params=1_000_000)
    a = draw_reference(space, limits, 100, size=16, seed=1)
    assert (
        a == draw_reference(space, limits, 100, size=16, seed=1) != draw_reference(space, limits, 100, size=16, seed=2)
    )
    assert len(set(a)) == 16 and all(space.check(x, limits, 100) is None for x in a)


def test_search_stores_its_reference_and_resumes_with_the_same_values(sqlite_url: str) -> None:
    assert DEFAULT_PROXY == "diswot-retest-balance"
    args = [
        *SMALL_S0,
        "--image-size",
        "16",
        "--reference-size",
        "8",
        "--storage",
        sqlite_url,
        "--study",
        "plus",
        "--no-progress",
    ]
    assert run_cli(*args, "--n-trials", "4") == 0
    study = optuna.load_study(study_name="plus", storage=sqlite_url)
    stored = study._storage.get_study_system_attrs(study._study_id)[REFERENCE_ATTR]
    assert len(stored["archs"]) == 8
    # every raw term and the FLOPs: a trial of a reference student reuses them
    assert set(get_proxy(DEFAULT_PROXY).reference_terms) | {"flops", "log_params"} <= set(stored["values"])
    assert study.user_attrs["diswot:config"]["proxy"] == DEFAULT_PROXY
    assert study.user_attrs["diswot:config"]["reference_size"] == 8
    first = study.trials[1]
    study.enqueue_trial(first.params)  # the resumed search scores a student of the first run again
    assert run_cli(*args, "--n-trials", "2") == 0
    study = optuna.load_study(study_name="plus", storage=sqlite_url)
    assert study._storage.get_study_system_attrs(study._study_id)[REFERENCE_ATTR] == stored
    again = study.trials[4]
    assert again.user_attrs["arch"] == first.user_attrs["arch"]
    assert again.value == pytest.approx(first.value, rel=1e-9)


def test_old_study_resumes_with_its_recorded_proxy(sqlite_url: str) -> None:
    base = [
        *SMALL_S0,
        "--storage",
        sqlite_url,
        "--study",
        "old",
        "--no-progress",
    ]
    assert run_cli(*base, "--proxy", "diswot", "--n-trials", "2") == 0
    assert run_cli(*base, "--n-trials", "2") == 0  # no --proxy: the study's own score, not the new default
    study = optuna.load_study(study_name="old", storage=sqlite_url)
    assert study.user_attrs["diswot:config"]["proxy"] == "diswot"
    assert "reference_size" not in study.user_attrs["diswot:config"]
    assert len(study.trials) == 4


def test_unknown_proxy_config_has_no_reference() -> None:
    assert get_proxy("diswot").reference_terms == ()
    assert get_proxy("diswot-plus").reference_terms


def test_relation_plus_ranks_the_relation_term_without_the_semantic_one() -> None:
    """``diswot-relation-plus`` is ``diswot-plus`` without M_s: same raw terms, fewer ranked."""
    arch = get_space("s0").decode(ARCH)
    plus = make_scoring(SearchConfig(proxy="diswot-plus", **SMALL))
    rel = make_scoring(SearchConfig(proxy="diswot-relation-plus", **SMALL))
    assert rel.scorer.raw(arch)[0] == pytest.approx(plus.scorer.raw(arch)[0], rel=1e-6)
    assert rel.scorer.proxy.reference_terms == ("relation", "jacov", "synflow", "log_params")
    attach_reference(rel)
    ref = rel.scorer.reference
    assert ref is not None and "relation" in ref.values
    # a lower M_r (closer to the teacher's relations) never lowers the score
    terms = {k: float(ref.values[k][0]) for k in rel.scorer.proxy.reference_terms}
    closer = {**terms, "relation": terms["relation"] * 0.5}
    assert rel.scorer.proxy.combine(closer, ref) >= rel.scorer.proxy.combine(terms, ref)


def test_diswot_rank_takes_the_papers_score_as_one_signal() -> None:
    arch = get_space("s0").decode(ARCH)
    setup = make_scoring(SearchConfig(proxy="diswot-rank", **SMALL))
    attach_reference(setup)
    ref = setup.scorer.reference
    assert ref is not None and {"diswot", "jacov", "synflow", "log_params"} <= set(ref.values)
    terms = setup.scorer.raw(arch)[0]
    paper = make_scoring(SearchConfig(proxy="diswot", **SMALL)).scorer.score(arch).score
    assert terms["diswot"] == pytest.approx(paper, rel=1e-5)
    better = {**terms, "diswot": terms["diswot"] + 1.0}  # a higher DisWOT score never lowers the rank
    assert setup.scorer.proxy.combine(better, ref) >= setup.scorer.proxy.combine(terms, ref)
