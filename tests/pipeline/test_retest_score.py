"""``diswot-retest-balance``: M_s scored on a second draw of the reference sample, and the teacher's
choices (which size count, how far to lean on it) read from both draws."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from diswot.pipeline import run_search
from diswot.pipeline.assembly import make_scoring
from diswot.pipeline.config import SearchConfig
from diswot.proxies import RETEST, Reference, get_proxy
from diswot.storage import record

from .conftest import SMALL_CONFIG

SMALL = dict(SMALL_CONFIG, proxy="diswot-retest-balance")
N = 32


def _reference(retest: np.ndarray | None) -> Reference:
    """M_s falling with the parameters; ``retest``: M_s on the second draw (none: an older study's sample)."""
    rng = np.random.default_rng(4)
    size = np.linspace(10.0, 14.0, N)
    semantic = -size + rng.normal(scale=0.5, size=N)
    values = {
        "semantic": semantic.tolist(),
        "synflow": rng.normal(size=N).tolist(),
        "log_params": size.tolist(),
        "log_flops": rng.permutation(size).tolist(),
    }
    if retest is not None:
        values["semantic" + RETEST] = retest.tolist()
    return Reference(tuple(str(i) for i in range(N)), values)


def test_a_trial_never_sees_the_retest_and_one_judge_is_the_plain_agreement() -> None:
    semantic = np.array(_reference(None).values["semantic"])
    ref = _reference(semantic + np.random.default_rng(5).normal(scale=2.0, size=N))
    terms = ref.terms_of("3")
    assert terms is not None and set(terms) == {"semantic", "synflow", "log_params", "log_flops"}
    for k in ("log_params", "log_flops"):
        assert ref.agreement_of_mean(["semantic"], k, judge_sign=-1.0) == pytest.approx(
            ref.agreement("semantic", k, judge_sign=-1.0)
        )


def test_the_counts_are_weighed_by_their_agreement_with_m_s_over_both_draws() -> None:
    """The second draw changes only the teacher's choices (the counts' weights and the leaning); without
    one the score is the default's."""
    from scipy import stats

    proxy, balance = get_proxy("diswot-retest-balance"), get_proxy("diswot-teacher-balance")
    assert proxy.retest_terms == ("semantic",) and proxy.reference_terms == balance.reference_terms
    semantic = np.array(_reference(None).values["semantic"])
    plain = _reference(None)
    assert proxy.reference_weights(plain) == pytest.approx(balance.reference_weights(plain))
    # the first draw agrees with the parameters; the second, at random with both counts
    ref = _reference(np.random.default_rng(7).permutation(semantic))
    mean_rank = (stats.rankdata(-semantic) + stats.rankdata(-np.array(ref.values["semantic" + RETEST]))) / 2
    agree = {k: max(0.0, stats.kendalltau(mean_rank, ref.values[k]).statistic) for k in ("log_params", "log_flops")}
    weights = proxy.reference_weights(ref)
    assert weights["log_params"] == pytest.approx(agree["log_params"] ** 2 / sum(a**2 for a in agree.values()))
    assert weights["semantic"] == weights["synflow"] == pytest.approx((1.0 - max(agree.values())) / 2)
    one_draw = balance.reference_weights(ref)
    assert weights["semantic"] > one_draw["semantic"]  # half the evidence for the count: the score leans less on it
    mid = {k: float(sorted(ref.values[k])[N // 2]) for k in balance.reference_terms}
    z = {k: ref.normal_score(k, mid[k], sign=-1.0 if k == "semantic" else 1.0) for k in mid}
    assert proxy.combine(mid, ref) == pytest.approx(sum(weights[k] * z[k] for k in z))


def test_the_reference_holds_m_s_of_a_second_draw_and_no_synflow_pass_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The retest is the study's scoring with one more repeat, on that repeat: one student forward, no SynFlow."""
    from diswot.proxies import _ensemble

    synflow_calls: list[int] = []
    flow = _ensemble.synaptic_flow
    monkeypatch.setattr(_ensemble, "synaptic_flow", lambda *a: synflow_calls.append(1) or flow(*a))
    setup = make_scoring(SearchConfig(**SMALL))  # type: ignore[arg-type]
    ref = setup.scorer.reference
    assert ref is not None and len(synflow_calls) == len(ref.archs)  # the first draw's SynFlow only
    retest = np.array(ref.values["semantic" + RETEST])
    assert len(retest) == len(ref.archs) and not np.allclose(retest, ref.values["semantic"])
    two = make_scoring(SearchConfig(**{**SMALL, "repeats": 2}), reference=ref)  # type: ignore[arg-type]
    arch = setup.space.decode(ref.archs[2])
    assert two.scorer.raw(arch)[1]["semantic"] == pytest.approx(float(retest[2]))
    assert setup.scorer.from_reference(arch).score == pytest.approx(setup.scorer.score(arch).score)  # type: ignore[union-attr]


def test_a_search_stores_the_retest_and_resumes_with_it(sqlite_url: str) -> None:
    config = SearchConfig(**SMALL)  # type: ignore[arg-type]
    study = run_search(config, sqlite_url, n_trials=3, note_every=0, progress=False, pick=False)
    stored = record.reference_sample(study)
    assert stored is not None and len(stored["values"]["semantic" + RETEST]) == len(stored["archs"])
    parts = record.reference_parts(study)
    assert all(terms is None or "semantic" + RETEST in terms for terms in parts.values())
    assert all(not any(k.endswith(RETEST) for k in t.user_attrs) for t in study.trials)
    again = run_search(config, sqlite_url, n_trials=2, note_every=0, progress=False, pick=False)
    assert record.reference_sample(again) == stored
    values = [t.value for t in optuna.load_study(study_name="diswot", storage=sqlite_url).trials]
    assert len(values) == 5 and all(v is not None for v in values)
