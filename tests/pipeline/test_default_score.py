"""The default score (``diswot-retest-balance``; its second draw in test_retest_score.py), ``diswot-teacher-balance``,
``diswot-teacher-capacity``, ``diswot-semantic-capacity``,
``diswot-capacity``, ``diswot-balance``, ``diswot-prior`` and ``diswot-flow``: their terms, their ranking against a
reference sample, and what a short search costs (the reference sized to the search and reused by
its first candidates, the pick sized to the search)."""

from __future__ import annotations

import math

import optuna
import pytest

from diswot.pipeline.config import DEFAULT_PROXY, MIN_REFERENCE_SIZE, SearchConfig, reference_size_for
from diswot.pipeline.pick import pick_size
from diswot.pipeline.assembly import draw_reference
from diswot.pipeline.reference import build_reference
from diswot.storage.record import REFERENCE as REFERENCE_ATTR
from diswot.pipeline.assembly import make_scoring
from diswot.proxies import Reference, arch_flops, get_proxy
from diswot.spaces import Limits, get_space

from .conftest import SMALL_S0, run_cli

SMALL = dict(space="s0", teacher="resnet20", dataset="synthetic", batch_size=8, image_size=16, device="cpu")


def test_the_default_is_diswot_retest_balance_on_one_forward_pass() -> None:
    assert DEFAULT_PROXY == "diswot-retest-balance"
    proxy = get_proxy(DEFAULT_PROXY)
    assert proxy.retest_terms == ("semantic",)  # M_s on the reference's second draw
    assert proxy.reference_terms == ("semantic", "synflow", "log_params", "log_flops")
    assert get_proxy("diswot-capacity").reference_terms == (
        "relation",
        "semantic",
        "synflow",
        "log_params",
        "log_flops",
    )
    assert "semantic" in proxy.options  # the study's resolved semantic form reaches the reference too
    assert get_proxy("diswot-balance").reference_terms == ("relation", "semantic", "synflow", "log_flops")


@pytest.mark.parametrize("name", ["diswot-capacity", "diswot-prior"])
def test_the_capacity_and_prior_scores_have_the_flow_terms(name: str) -> None:
    """Both read the raw terms of ``diswot-flow`` (``diswot-prior`` without SynFlow's pass)."""
    arch = get_space("s0").decode("ResNet[3,1,5]")
    terms = make_scoring(SearchConfig(proxy=name, **SMALL)).scorer.raw(arch)[0]
    flow = make_scoring(SearchConfig(proxy="diswot-flow", **SMALL)).scorer.raw(arch)[0]
    assert terms == pytest.approx({k: v for k, v in flow.items() if k in terms}, rel=1e-6)
    assert ("synflow" in terms) == (name == "diswot-capacity")


def test_capacity_weighs_both_sizes_and_the_prior_weighs_similarity_half() -> None:
    """``diswot-capacity``: the size side is the mean of log params and log FLOPs, the other side the
    mean of M_r, M_s and SynFlow; ``diswot-prior``: log FLOPs plus half the mean of M_r and M_s."""
    from diswot.proxies import Reference

    rng = __import__("numpy").random.default_rng(0)
    keys = ("relation", "semantic", "synflow", "log_params", "log_flops")
    ref = Reference(tuple(str(i) for i in range(32)), {k: rng.normal(size=32).tolist() for k in keys})
    mid = {k: float(sorted(ref.values[k])[16]) for k in keys}
    capacity, prior = get_proxy("diswot-capacity"), get_proxy("diswot-prior")
    base = capacity.combine(mid, ref)
    assert capacity.combine({**mid, "log_params": mid["log_params"] + 0.1}, ref) > base
    assert capacity.combine({**mid, "log_flops": mid["log_flops"] + 0.1}, ref) > base
    assert capacity.combine({**mid, "relation": mid["relation"] - 0.1}, ref) > base  # closer to the teacher
    z = {k: ref.normal_score(k, mid[k], sign=-1.0 if k in ("relation", "semantic") else 1.0) for k in keys}
    assert base == pytest.approx(
        (z["relation"] + z["semantic"] + z["synflow"]) / 3 + (z["log_params"] + z["log_flops"]) / 2
    )
    assert prior.combine(mid, ref) == pytest.approx(z["log_flops"] + 0.5 * (z["relation"] + z["semantic"]) / 2)


def test_semantic_capacity_is_capacity_without_the_relation_term() -> None:
    """``diswot-semantic-capacity``: the mean of M_s and SynFlow plus the mean of the two sizes; M_r
    is neither stored in the reference nor read."""
    from diswot.proxies import Reference

    rng = __import__("numpy").random.default_rng(1)
    keys = ("semantic", "synflow", "log_params", "log_flops")
    ref = Reference(tuple(str(i) for i in range(32)), {k: rng.normal(size=32).tolist() for k in keys})
    mid = {k: float(sorted(ref.values[k])[16]) for k in keys}
    proxy = get_proxy("diswot-semantic-capacity")
    assert proxy.reference_terms == keys
    z = {k: ref.normal_score(k, mid[k], sign=-1.0 if k == "semantic" else 1.0) for k in keys}
    expected = (z["semantic"] + z["synflow"]) / 2 + (z["log_params"] + z["log_flops"]) / 2
    assert proxy.combine(mid, ref) == pytest.approx(expected)
    assert proxy.combine({**mid, "relation": 1e9}, ref) == pytest.approx(expected)
    assert proxy.combine({**mid, "semantic": mid["semantic"] - 0.1}, ref) > expected  # closer to the teacher
    arch = get_space("s0").decode("ResNet[3,1,5]")
    terms = make_scoring(SearchConfig(proxy="diswot-semantic-capacity", **SMALL)).scorer.raw(arch)[0]
    flow = make_scoring(SearchConfig(proxy="diswot-flow", **SMALL)).scorer.raw(arch)[0]
    assert terms == pytest.approx(flow, rel=1e-6)


def test_terms_equal_the_papers_terms_and_the_flops() -> None:
    space = get_space("s0")
    arch = space.decode("ResNet[3,1,5]")
    terms = make_scoring(SearchConfig(proxy="diswot-balance", **SMALL)).scorer.raw(arch)[0]
    flow = make_scoring(SearchConfig(proxy="diswot-flow", **SMALL)).scorer.raw(arch)[0]
    paper = make_scoring(SearchConfig(proxy="diswot", **SMALL)).scorer.score(arch)
    synflow = make_scoring(SearchConfig(proxy="synflow", **SMALL)).scorer.score(arch).score
    assert terms == pytest.approx(flow, rel=1e-9)
    assert terms["diswot"] == pytest.approx(paper.score, rel=1e-5)
    assert terms["relation"] == pytest.approx(paper.terms["relation"], rel=1e-5)
    assert terms["semantic"] == pytest.approx(paper.terms["semantic"], rel=1e-5)
    assert terms["synflow"] == pytest.approx(synflow, rel=1e-6)
    assert terms["log_flops"] == pytest.approx(math.log(arch_flops(space, arch, 100, 16)), rel=1e-9)
    assert terms["log_params"] == pytest.approx(math.log(space.count_params(arch, 100)))


@pytest.fixture(scope="module")
def balance():  # noqa: ANN201
    setup = make_scoring(SearchConfig(proxy="diswot-balance", reference_size=16, **SMALL))
    archs = draw_reference(setup.space, Limits(), 100, size=16, seed=0)
    setup.scorer.reference = build_reference(setup.scorer, archs)
    return setup


def test_balance_moves_the_right_way_with_each_signal(balance) -> None:  # noqa: ANN001
    proxy, ref = balance.scorer.proxy, balance.scorer.reference
    terms = {k: float(ref.values[k][3]) for k in proxy.reference_terms}
    base = proxy.combine(terms, ref)
    assert proxy.combine({**terms, "relation": terms["relation"] * 0.5}, ref) > base  # closer to the teacher
    assert proxy.combine({**terms, "semantic": terms["semantic"] * 0.5}, ref) > base
    assert proxy.combine({**terms, "synflow": terms["synflow"] + 5}, ref) > base
    assert proxy.combine({**terms, "log_flops": terms["log_flops"] + 1}, ref) > base
    # compute weighs as much as the three other signals together
    top = {k: max(ref.values[k]) for k in proxy.reference_terms}
    top.update(relation=min(ref.values["relation"]), semantic=min(ref.values["semantic"]))
    one_up = {**top, "log_flops": top["log_flops"] + 1}
    others_up = {**top, "synflow": top["synflow"] + 1}
    # above the whole reference a candidate is still ordered (a sum of log ranks saturates there)
    assert proxy.combine(one_up, ref) > proxy.combine(top, ref) and proxy.combine(others_up, ref) > proxy.combine(
        top, ref
    )


def test_a_reference_student_scores_the_same_from_the_reference(balance) -> None:  # noqa: ANN001
    scorer = balance.scorer
    arch = balance.space.decode(scorer.reference.archs[2])
    reused, fresh = scorer.from_reference(arch), scorer.score(arch)
    assert reused is not None and reused.seconds == 0.0
    assert reused.score == pytest.approx(fresh.score, rel=1e-9)
    assert reused.terms == pytest.approx(fresh.terms, rel=1e-9)
    assert reused.flops == fresh.flops
    outside = next(a for a in balance.space.enumerate() if balance.space.encode(a) not in scorer.reference.archs)
    assert scorer.from_reference(outside) is None


def test_reference_sized_to_the_search() -> None:
    assert reference_size_for(24) == 24
    assert reference_size_for(3) == MIN_REFERENCE_SIZE
    assert reference_size_for(1000) == 64 and reference_size_for(None) == 64


def test_a_short_search_reuses_the_reference_and_picks_few(sqlite_url: str) -> None:
    args = [*SMALL_S0, "--image-size", "16", "--storage", sqlite_url, "--study", "short", "--no-progress"]
    assert run_cli(*args, "--n-trials", "18") == 0
    study = optuna.load_study(study_name="short", storage=sqlite_url)
    stored = study._storage.get_study_system_attrs(study._study_id)
    assert study.user_attrs["diswot:config"]["reference_size"] == 18  # sized to the first run
    assert len(stored[REFERENCE_ATTR]["archs"]) == 18
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    from_reference = [t for t in done if t.user_attrs.get("score_seconds") == 0.0]
    # the evolution's first candidates are the reference sample's first architectures: no forward pass
    assert len(from_reference) >= 15
    assert all(t.user_attrs["arch"] in stored[REFERENCE_ATTR]["archs"] for t in from_reference)
    assert len([k for k in stored if k.startswith("diswot:pick:")]) == 3  # one student in 8, at least 3
    # resumed with more trials, the study keeps its reference
    assert run_cli(*args, "--n-trials", "2") == 0
    study = optuna.load_study(study_name="short", storage=sqlite_url)
    assert study.user_attrs["diswot:config"]["reference_size"] == 18
    assert study._storage.get_study_system_attrs(study._study_id)[REFERENCE_ATTR] == stored[REFERENCE_ATTR]


def test_rescore_scores_reference_students_again(sqlite_url: str) -> None:
    args = [*SMALL_S0, "--image-size", "16", "--storage", sqlite_url, "--study", "re", "--no-progress"]
    assert run_cli(*args, "--n-trials", "4", "--rescore", "--pick-top", "0") == 0
    study = optuna.load_study(study_name="re", storage=sqlite_url)
    assert all(t.user_attrs["score_seconds"] > 0 for t in study.trials)


def test_pick_sized_to_the_search() -> None:
    study = optuna.create_study()
    for i in range(24):
        study.add_trial(optuna.trial.create_trial(value=float(i), user_attrs={"arch": f"a{i}"}))
    assert pick_size(study, None) == 3 and pick_size(study, 7) == 7
    for i in range(24, 100):
        study.add_trial(optuna.trial.create_trial(value=float(i), user_attrs={"arch": f"a{i}"}))
    assert pick_size(study, None) == 10


def test_an_interrupted_reference_sample_keeps_its_scorings_and_resumes_them(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the reference sample is scored: the architectures scored so far stay in the study,
    and the next run scores only the rest."""
    from diswot.pipeline import run_search
    from diswot.pipeline.scoring import Scorer
    from diswot.storage import record

    raw = Scorer.raw
    calls: list[int] = []

    def interrupted(self: Scorer, arch: object, repeats: object = None) -> list[dict[str, float]]:
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append(1)
        return raw(self, arch, repeats)  # type: ignore[arg-type]

    config = SearchConfig(**{**SMALL, "reference_size": 8})
    monkeypatch.setattr(Scorer, "raw", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_search(config, sqlite_url, n_trials=1, note_every=0, progress=False, pick=False)
    study = optuna.load_study(study_name="diswot", storage=sqlite_url)
    assert len(record.reference_parts(study)) == 5 and record.reference_sample(study) is None
    calls.clear()
    monkeypatch.setattr(Scorer, "raw", lambda self, arch, repeats=None: calls.append(1) or raw(self, arch, repeats))
    study = run_search(config, sqlite_url, n_trials=1, note_every=0, progress=False, pick=False)
    assert len(calls) == 3  # the 3 architectures left; the first trial reuses the sample's first
    stored = record.reference_sample(study)
    parts = record.reference_parts(study)
    assert stored is not None and set(stored["archs"]) == set(parts)


def _teacher_reference(agree_with: str, n: int = 32) -> Reference:
    """A reference sample whose M_s (lower is better) falls as ``agree_with`` grows; the other count is noise."""
    import numpy as np

    rng = np.random.default_rng(2)
    size = np.linspace(10.0, 14.0, n)
    values = {
        "semantic": (-size + rng.normal(scale=0.3, size=n)).tolist(),
        "synflow": rng.normal(size=n).tolist(),
        "log_params": (size if agree_with == "log_params" else rng.permutation(size)).tolist(),
        "log_flops": (size if agree_with == "log_flops" else rng.permutation(size)).tolist(),
    }
    return Reference(tuple(str(i) for i in range(n)), values)


@pytest.mark.parametrize("count", ["log_params", "log_flops"])
def test_teacher_capacity_weighs_the_size_count_the_teacher_agrees_with(count: str) -> None:
    """``diswot-teacher-capacity``: the size count whose ranking of the reference goes with -M_s weighs
    more; the other side and the weights' sum are those of ``diswot-semantic-capacity``."""
    ref = _teacher_reference(count)
    proxy = get_proxy("diswot-teacher-capacity")
    assert proxy.reference_terms == get_proxy(DEFAULT_PROXY).reference_terms
    weights = dict(zip(proxy.size_terms, proxy.size_weights(ref)))
    other = next(k for k in weights if k != count)
    assert weights[count] > 0.8 > weights[other] >= 0.0
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights[count] == pytest.approx(
        ref.agreement("semantic", count, judge_sign=-1.0)
        / sum(max(0.0, ref.agreement("semantic", k, judge_sign=-1.0)) for k in weights)
    )
    mid = {k: float(sorted(ref.values[k])[16]) for k in ref.values}
    base = proxy.combine(mid, ref)
    bigger_by_the_teachers_count = proxy.combine({**mid, count: mid[count] + 0.3}, ref)
    bigger_by_the_other = proxy.combine({**mid, other: mid[other] + 0.3}, ref)
    assert bigger_by_the_teachers_count > bigger_by_the_other >= base
    z = {k: ref.normal_score(k, mid[k], sign=-1.0 if k == "semantic" else 1.0) for k in mid}
    assert base == pytest.approx(
        (z["semantic"] + z["synflow"]) / 2
        + weights["log_params"] * z["log_params"]
        + weights["log_flops"] * z["log_flops"]
    )


def test_teacher_capacity_weighs_both_counts_alike_when_the_teacher_agrees_with_neither() -> None:
    """A teacher whose M_s goes against both counts (or is flat) leaves them equal weights, the default's."""
    from diswot.proxies import Reference

    n = 16
    flat = {"semantic": [0.5] * n, "synflow": list(range(n)), "log_params": list(range(n)), "log_flops": list(range(n))}
    against = {**flat, "semantic": list(range(n))}  # M_s grows with size: -M_s agrees with neither
    proxy = get_proxy("diswot-teacher-capacity")
    for values in (flat, against):
        ref = Reference(tuple(str(i) for i in range(n)), values)
        assert proxy.size_weights(ref) == [0.5, 0.5]


@pytest.mark.parametrize("count", ["log_params", "log_flops"])
def test_teacher_balance_squares_the_agreements_and_leans_on_the_count_by_the_largest(count: str) -> None:
    """``diswot-teacher-balance``: each count weighs its agreement with -M_s squared (summing to 1), and
    M_s and SynFlow each (1 - the largest agreement) / 2."""
    ref = _teacher_reference(count)
    proxy = get_proxy("diswot-teacher-balance")
    assert proxy.reference_terms == get_proxy("diswot-teacher-capacity").reference_terms
    agree = {k: max(0.0, ref.agreement("semantic", k, judge_sign=-1.0)) for k in ("log_params", "log_flops")}
    weights = proxy.reference_weights(ref)
    assert weights[count] == pytest.approx(agree[count] ** 2 / sum(a**2 for a in agree.values()))
    assert weights["log_params"] + weights["log_flops"] == pytest.approx(1.0)
    assert weights["semantic"] == weights["synflow"] == pytest.approx((1.0 - max(agree.values())) / 2)
    assert 0.0 < weights["semantic"] < 0.25  # the teacher agrees with the count closely: the score leans on it
    mid = {k: float(sorted(ref.values[k])[16]) for k in ref.values}
    z = {k: ref.normal_score(k, mid[k], sign=-1.0 if k == "semantic" else 1.0) for k in mid}
    assert proxy.combine(mid, ref) == pytest.approx(sum(weights[k] * z[k] for k in z))


def test_teacher_balance_leans_less_on_size_the_less_the_teacher_agrees() -> None:
    """A noisier M_s agrees less with the count, so M_s and SynFlow weigh more; one that agrees with
    neither count leaves ``diswot-semantic-capacity``'s score."""
    import numpy as np

    n = 32
    size = np.linspace(10.0, 14.0, n)
    rng = np.random.default_rng(3)

    def reference(noise: float) -> Reference:
        values = {
            "semantic": (-size + rng.normal(scale=noise, size=n)).tolist(),
            "synflow": rng.normal(size=n).tolist(),
            "log_params": size.tolist(),
            "log_flops": rng.permutation(size).tolist(),
        }
        return Reference(tuple(str(i) for i in range(n)), values)

    proxy = get_proxy("diswot-teacher-balance")
    close, loose = proxy.reference_weights(reference(0.3)), proxy.reference_weights(reference(3.0))
    assert close["semantic"] < loose["semantic"] <= 0.5
    against = Reference(  # M_s grows with both counts: -M_s agrees with neither
        tuple(str(i) for i in range(n)),
        {
            "semantic": size.tolist(),
            "synflow": rng.normal(size=n).tolist(),
            "log_params": size.tolist(),
            "log_flops": size.tolist(),
        },
    )
    assert proxy.reference_weights(against) == {"semantic": 0.5, "synflow": 0.5, "log_params": 0.5, "log_flops": 0.5}
    mid = {k: float(sorted(against.values[k])[16]) for k in against.values}
    assert proxy.combine(mid, against) == pytest.approx(get_proxy("diswot-semantic-capacity").combine(mid, against))
