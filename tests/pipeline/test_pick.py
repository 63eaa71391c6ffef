"""The pick: the search's best students re-scored with more repeats (``diswot.pipeline.pick``)."""

from __future__ import annotations

from dataclasses import replace

import optuna
import pytest

from diswot.pipeline.cli.distill import _trial_to_distill
from diswot.pipeline.config import SearchConfig
from diswot.pipeline.pick import recommended_trial, stored_picks, student_of, top_candidates
from diswot.pipeline.assembly import ScoringSetup, attach_reference, make_scoring
from diswot.proxies import Reference
from diswot.spaces import get_space

from .conftest import SMALL_CONFIG, SMALL_S0, run_cli

BASE = [
    *SMALL_S0,
    "--image-size",
    "16",
    "--reference-size",
    "8",
    "--no-progress",
    "--note-every",
    "0",
]
SMALL = SMALL_CONFIG


def _args(url: str, study: str, top: int, repeats: int, *more: str) -> list[str]:
    """A small search's arguments: ``study`` in ``url``, the pick's ``top`` students with ``repeats``."""
    return [*BASE, *more, "--storage", url, "--study", study, "--pick-top", str(top), "--pick-repeats", str(repeats)]


def _stored(study: optuna.Study) -> dict:
    """The stored pick scores as ``{"repeats": R, "scores": {arch: score}}`` (every one has R repeats)."""
    picks = stored_picks(study)
    (repeats,) = {p.repeats for p in picks.values()}
    return {"repeats": repeats, "scores": {a: p.score for a, p in picks.items()}}


@pytest.mark.parametrize("proxy", ["diswot-balance", "diswot-relation-plus", "diswot"])
def test_confirmed_score_is_what_more_repeats_give(sqlite_url: str, proxy: str) -> None:
    """A pick score is exact: for a score ranked against the reference sample, the mean raw terms of
    R repeats ranked once against the study's sample; for any other, the score ``--repeats R`` gives."""
    args = [
        *BASE,
        "--proxy",
        proxy,
        "--storage",
        sqlite_url,
        "--study",
        "c",
        "--n-trials",
        "6",
        "--pick-top",
        "3",
        "--pick-repeats",
        "3",
    ]
    assert run_cli(*args) == 0
    study = optuna.load_study(study_name="c", storage=sqlite_url)
    stored = _stored(study)
    assert stored["repeats"] == 3
    top = top_candidates(study.trials, 3)
    assert set(stored["scores"]) == {t.user_attrs["arch"] for t in top}
    setup = make_scoring(
        SearchConfig(proxy=proxy, repeats=3, **{**SMALL, "num_classes": None})
    )  # as the CLI resolved it
    if setup.scorer.proxy.reference_terms:
        reference = study._storage.get_study_system_attrs(study._study_id)["diswot:reference"]
        setup.scorer.reference = Reference.from_json(reference)
    proxy_ = setup.scorer.proxy
    for arch, score in stored["scores"].items():
        student = setup.space.decode(arch)
        if proxy_.reference_terms:
            draws = setup.scorer.raw(student)
            mean = {k: sum(d[k] for d in draws) / len(draws) for k in proxy_.reference_terms}
            expected = proxy_.combine(mean, setup.scorer.reference)
        else:
            expected = setup.scorer.score(student).score
        assert score == pytest.approx(expected, rel=1e-6), arch
    best = recommended_trial(study)
    assert best is not None and stored["scores"][best.user_attrs["arch"]] == max(stored["scores"].values())
    assert _trial_to_distill(study, None).number == best.number  # distill takes the recommended student


def test_recommendation_is_shown_and_survives_a_resume(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = _args(sqlite_url, "r", 2, 2, "--proxy", "diswot")
    assert run_cli(*args, "--n-trials", "4") == 0
    study = optuna.load_study(study_name="r", storage=sqlite_url)
    first = dict(_stored(study)["scores"])
    best = recommended_trial(study)
    assert best is not None
    out = capsys.readouterr().out
    assert f"recommended: trial {best.number} (best pick score" in out
    assert run_cli("show", "--storage", sqlite_url, "--study", "r") == 0
    assert f"recommended: trial {best.number}" in capsys.readouterr().out
    assert run_cli(*args, "--n-trials", "3") == 0  # resumed: the new best students are confirmed too
    study = optuna.load_study(study_name="r", storage=sqlite_url)
    now = _stored(study)["scores"]
    assert set(now) >= {t.user_attrs["arch"] for t in top_candidates(study.trials, 2)}
    assert {a: now[a] for a in first} == first  # kept, the same values
    after = recommended_trial(study)
    assert after is not None and now[after.user_attrs["arch"]] == max(now.values()) >= max(first.values())


def test_no_confirmation_recommends_the_best_score(sqlite_url: str) -> None:
    assert (
        run_cli(
            *BASE, "--proxy", "diswot", "--storage", sqlite_url, "--study", "n", "--n-trials", "3", "--pick-top", "0"
        )
        == 0
    )
    study = optuna.load_study(study_name="n", storage=sqlite_url)
    assert stored_picks(study) == {}
    assert recommended_trial(study).number == study.best_trial.number  # type: ignore[union-attr]


def test_top_candidates_are_distinct_and_best_first() -> None:
    study = optuna.create_study(direction="maximize")
    for value, arch in ((1.0, "a"), (3.0, "b"), (3.0, "b"), (2.0, "c"), (0.5, "d")):
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={"arch": arch}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, user_attrs={"arch": "e"}))
    assert [(t.number, t.user_attrs["arch"]) for t in top_candidates(study.trials, 3)] == [(1, "b"), (3, "c"), (0, "a")]


def test_equivalent_students_are_one_candidate() -> None:
    """NB201 cells that differ only in parameter-free dead edges build the same network: confirmed once."""
    space = get_space("nb201")
    a = "|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_3x3~0|nor_conv_3x3~1|none~2|"
    b = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|none~2|"
    c = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|nor_conv_3x3~0|nor_conv_3x3~1|none~2|"  # a dead conv counts
    study = optuna.create_study(direction="maximize")
    for value, arch in ((3.0, a), (3.0, b), (2.0, c)):
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={"arch": arch}))
    same = student_of(space)
    assert same(a) == same(b) != same(c)
    assert [t.number for t in top_candidates(study.trials, 2, same=same)] == [0, 2]
    assert [t.number for t in top_candidates(study.trials, 2)] == [0, 1]


def _no_rescoring(repeats: int) -> ScoringSetup:
    raise AssertionError(f"the pick re-scored with {repeats} repeats: the study's own repeats were enough")


def test_repeats_the_study_has_already_need_no_scoring() -> None:
    from diswot.pipeline.pick import pick_scores

    setup = make_scoring(SearchConfig(proxy="diswot", repeats=2, **SMALL))
    attach_reference(setup)
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=-1.0, user_attrs={"arch": "ResNet[1,1,1]"}))
    assert pick_scores(setup, study.trials, rescoring=_no_rescoring, top=5, repeats=2) == {"ResNet[1,1,1]": -1.0}
    assert pick_scores(replace(setup), study.trials, rescoring=_no_rescoring, top=5, repeats=1) == {
        "ResNet[1,1,1]": -1.0
    }


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--pick-top", "-1", "--pick-top must be >= 0"),
        ("--confirm-top", "-1", "--confirm-top must be >= 0"),  # the option's name before, a hidden alias
        ("--pick-repeats", "0", "--pick-repeats must be >= 1"),
        ("--reference-size", "0", "--reference-size must be >= 8"),
    ],
)
def test_bad_pick_options_are_one_line(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    assert run_cli(*BASE, "--storage", sqlite_url, "--study", "b", "--n-trials", "1", flag, value) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_study_made_before_keeps_its_pick_and_later_evidence_wins() -> None:
    """The old study key (one record of the last pick) is still read; a pick score with more repeats
    stored per trial replaces it for its student, and every other student stays."""
    from diswot.storage import record

    study = optuna.create_study(direction="maximize")
    for value, arch in ((3.0, "ResNet[1,1,1]"), (2.0, "ResNet[2,2,2]"), (1.0, "ResNet[3,3,3]")):
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={"arch": arch}))
    legacy = {"repeats": 4, "scores": {"ResNet[1,1,1]": 1.0, "ResNet[2,2,2]": 1.5}}
    study._storage.set_study_system_attr(study._study_id, record.LEGACY_PICK, legacy)
    assert {a: (p.trial, p.score) for a, p in stored_picks(study).items()} == {
        "ResNet[1,1,1]": (None, 1.0),
        "ResNet[2,2,2]": (None, 1.5),
    }
    assert recommended_trial(study).number == 1  # type: ignore[union-attr]
    record.add_pick(study, record.PickScore(2, "ResNet[3,3,3]", 1.2, 4))
    record.add_pick(study, record.PickScore(1, "ResNet[2,2,2]", 0.5, 8))  # more repeats: better evidence
    picks = stored_picks(study)
    assert {a: p.score for a, p in picks.items()} == {"ResNet[1,1,1]": 1.0, "ResNet[2,2,2]": 0.5, "ResNet[3,3,3]": 1.2}
    assert recommended_trial(study).number == 2  # type: ignore[union-attr]


def test_a_stored_pick_score_is_reused_not_rescored() -> None:
    from diswot.pipeline.pick import pick_study
    from diswot.storage import record

    setup = make_scoring(SearchConfig(proxy="diswot", **SMALL))
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=-1.0, user_attrs={"arch": "ResNet[1,1,1]"}))
    record.add_pick(study, record.PickScore(0, "ResNet[1,1,1]", -0.5, 4))
    assert pick_study(study, setup, rescoring=_no_rescoring, top=3, repeats=4) == {"ResNet[1,1,1]": -0.5}
    assert pick_study(study, setup, rescoring=_no_rescoring, top=3, repeats=2) == {"ResNet[1,1,1]": -0.5}


def test_pick_report_carries_the_pick_and_the_distillation() -> None:
    """What ``show --json`` prints: the recommended trial, each student's pick score and repeats, its
    distillation results, and every pick score."""
    import json

    from diswot.pipeline.pick import pick_report
    from diswot.storage import record

    study = optuna.create_study(direction="maximize")
    rows = (("ResNet[1,1,1]", 3.0, {}), ("ResNet[2,2,2]", 2.0, {"distill_top1": 0.61, "distill_epochs": 2}))
    for arch, value, extra in rows:
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={"arch": arch, **extra}))
    record.add_pick(study, record.PickScore(1, "ResNet[2,2,2]", 1.5, 4))
    report = json.loads(json.dumps(pick_report(study)))  # JSON as it is printed
    assert report["recommended"] == {
        "trial": 1,
        "arch": "ResNet[2,2,2]",
        "by": "pick score",
        "score": 2.0,
        "pick_score": 1.5,
        "pick_repeats": 4,
    }
    first, second = report["students"]
    assert (first["trial"], first["recommended"], first["pick_score"], first["distill_top1"]) == (1, True, 1.5, 0.61)
    assert (second["trial"], second["recommended"], second["pick_score"], second["pick_repeats"]) == (
        0,
        False,
        None,
        None,
    )
    assert report["picks"] == [{"trial": 1, "arch": "ResNet[2,2,2]", "pick_score": 1.5, "repeats": 4}]


def test_the_pick_prepares_only_the_teacher_sides_the_study_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pick's scorer takes the study's prepared teacher sides and prepares the others once,
    when first needed: the same terms as a scorer that prepares every repeat itself."""
    one = make_scoring(SearchConfig(proxy="diswot", **SMALL))
    proxy_class = type(one.scorer.proxy)
    real = proxy_class.prepare
    calls: list[int] = []

    def counted(self, teacher, batch):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(self, teacher, batch)

    monkeypatch.setattr(proxy_class, "prepare", counted)
    three = make_scoring(replace(one.config, repeats=3), contexts=one.scorer.prepared())
    assert len(calls) == 1  # repeat 1 at construction (a teacher that does not fit says so there); repeat 0 handed over
    arch = one.space.decode("ResNet[3,1,1]")
    got = three.scorer.raw(arch, repeats=range(1, 3))
    assert len(calls) == 2  # repeat 2 when first scored
    three.scorer.raw(arch, repeats=range(1, 3))
    assert len(calls) == 2  # and never again
    fresh = make_scoring(replace(one.config, repeats=3))
    assert len(calls) == 3  # a scorer handed nothing prepares its first repeat at once
    assert got == [pytest.approx(t) for t in fresh.scorer.raw(arch, repeats=range(1, 3))]
    assert three.scorer.raw(arch, repeats=[0]) == [pytest.approx(t) for t in one.scorer.raw(arch)]


def test_a_study_of_several_repeats_made_before_keeps_averaging_its_terms(sqlite_url: str) -> None:
    """A new study of several repeats records that its trials average their repeats' ranked scores;
    one made before (no such record) resumes as it was scored: the mean terms ranked once. Neither
    resume is refused."""
    from diswot.proxies import get_proxy
    from diswot.storage import record

    args = _args(sqlite_url, "two", 2, 3, "--repeats", "2")
    assert run_cli(*args, "--n-trials", "3") == 0
    study = optuna.load_study(study_name="two", storage=sqlite_url)
    config = dict(study.user_attrs[record.CONFIG])
    assert config["averaged"] == "scores"
    proxy = get_proxy(config["proxy"])
    reference = Reference.from_json(study._storage.get_study_system_attrs(study._study_id)[record.REFERENCE])

    def ranked_once(t: optuna.trial.FrozenTrial) -> float:
        return proxy.combine({k: float(t.user_attrs[k]) for k in proxy.reference_terms}, reference)

    made_now = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert any(t.value != pytest.approx(ranked_once(t), rel=1e-9) for t in made_now)
    del config["averaged"]  # as a release before recorded it
    study.set_user_attr(record.CONFIG, config)
    assert run_cli(*args, "--n-trials", "3") == 0
    resumed = [t for t in study.trials if t.number >= 3 and t.state == optuna.trial.TrialState.COMPLETE]
    assert resumed and all(t.value == pytest.approx(ranked_once(t), rel=1e-9) for t in resumed)
    assert "averaged" not in optuna.load_study(study_name="two", storage=sqlite_url).user_attrs[record.CONFIG]
