"""Multi-objective searches end to end on SQLite: limits, the front, resume, show --pareto/--budget."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
import torch
from optuna.study import StudyDirection
from optuna.trial import TrialState

from diswot.pipeline.config import SearchConfig
from diswot.pipeline.errors import DiswotError
from diswot.proxies import arch_flops
from diswot.pipeline.config import parse_objectives
from diswot.pipeline.objectives import measure_latency
from diswot.pipeline.assembly import make_sampler, student_key
from diswot.spaces import Limits, NB201Arch, get_space

from .conftest import run_cli, run_process

FAST = ["--dataset", "synthetic", "--batch-size", "8", "--no-progress"]
MAX_PARAMS, MAX_FLOPS = 250_000, 70_000_000


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """(score max, params min): ``a`` no worse in both and better in one."""
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


@pytest.fixture(scope="module")
def two_objective(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A 2-objective S0 study (score, params) under params and FLOPs limits, run twice."""
    url = f"sqlite:///{tmp_path_factory.mktemp('mo') / 'study.db'}"
    args = [
        "search",
        "--space",
        "s0",
        "--teacher",
        "resnet20",
        *FAST,
        "--storage",
        url,
        "--study",
        "mo",
        "--objectives",
        "score,params",
        "--max-params",
        "250K",
        "--max-flops",
        "70M",
        "--population-size",
        "6",
        "--tournament-size",
        "3",
    ]
    assert run_cli(*args, "--n-trials", "12") == 0
    first = len(optuna.load_study(study_name="mo", storage=url).trials)
    assert run_cli(*args, "--n-trials", "4") == 0  # resume
    return SimpleNamespace(url=url, args=args, first=first, study=optuna.load_study(study_name="mo", storage=url))


def test_no_trial_is_over_the_limits(two_objective: SimpleNamespace) -> None:
    study, space = two_objective.study, get_space("s0")
    assert study.directions == [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    assert study.metric_names == ["score", "params"]
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == len(study.trials) == 16  # the sampler proposes nothing over the limits
    for t in complete:
        arch = space.from_params(t.params)
        assert space.count_params(arch, 100) == t.user_attrs["params"] == t.values[1] <= MAX_PARAMS
        assert arch_flops(space, arch, 100, 32) <= MAX_FLOPS and t.user_attrs["flops"] <= MAX_FLOPS
        assert t.values[0] == pytest.approx(t.user_attrs["score"])


def test_front_is_non_dominated(two_objective: SimpleNamespace) -> None:
    complete = two_objective.study.get_trials(states=(TrialState.COMPLETE,))
    front = two_objective.study.best_trials
    assert len(front) >= 2  # a trade-off, not one winner
    for a in front:
        assert not any(dominates(tuple(b.values), tuple(a.values)) for b in complete)
    for t in complete:  # everything else is dominated by the front
        assert t in front or any(dominates(tuple(f.values), tuple(t.values)) for f in front)


def test_resuming_adds_trials(two_objective: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    assert two_objective.first == 12 and len(two_objective.study.trials) == 16
    capsys.readouterr()
    single = [a for a in two_objective.args if a not in ("--objectives", "score,params")]
    assert run_cli(*single, "--n-trials", "1") == 2  # other objectives: the config diff
    assert "objectives: ['score', 'params'] -> None" in capsys.readouterr().err
    assert run_cli(*two_objective.args[:-4], "--objectives", "score,flops", "--n-trials", "1") == 2
    assert "objectives: ['score', 'params'] -> ['score', 'flops']" in capsys.readouterr().err
    assert len(optuna.load_study(study_name="mo", storage=two_objective.url).trials) == 16


def test_show_pareto_prints_the_stored_front(
    two_objective: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    url = two_objective.url
    capsys.readouterr()
    assert run_cli("show", "--storage", url, "--study", "mo", "--pareto", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    front = optuna.load_study(study_name="mo", storage=url).best_trials
    assert {r["arch"] for r in rows} == {t.user_attrs["arch"] for t in front}
    assert len(rows) == len({r["arch"] for r in rows})  # each student once
    by_number = {t.number: t for t in front}
    for r in rows:
        t = by_number[r["trial"]]
        assert (r["score"], r["params"], r["flops"]) == (t.values[0], t.user_attrs["params"], t.user_attrs["flops"])
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert run_cli("show", "--storage", url, "--study", "mo", "--pareto") == 0
    out = capsys.readouterr().out
    assert "Pareto front of mo (score, params)" in out and all(r["arch"] in out for r in rows)


def test_show_budget_names_the_best_within_it(
    two_objective: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    url = two_objective.url
    complete = two_objective.study.get_trials(states=(TrialState.COMPLETE,))
    sizes = sorted({t.user_attrs["params"] for t in complete})
    budget = sizes[len(sizes) // 2]
    best = max((t for t in complete if t.user_attrs["params"] <= budget), key=lambda t: (t.values[0], -t.number))
    capsys.readouterr()
    assert run_cli("show", "--storage", url, "--study", "mo", "--budget", f"params={budget}", "--json") == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["source"] == "the Pareto front" and answer["budget"] == {"params": budget}
    assert answer["best"][0]["score"] == best.values[0] and answer["best"][0]["params"] <= budget
    assert run_cli("show", "--storage", url, "--study", "mo", "--budget", f"params={budget}") == 0
    out = capsys.readouterr().out
    assert answer["best"][0]["arch"] in out and f"--trial {answer['best'][0]['trial']}" in out
    assert run_cli("show", "--storage", url, "--study", "mo", "--budget", "params=1K") == 1
    assert "no student" in capsys.readouterr().out


def test_max_flops_fails_other_samplers_trials_before_scoring(sqlite_url: str) -> None:
    args = ["search", "--space", "s0", "--teacher", "resnet20", *FAST, "--storage", sqlite_url, "--study", "f"]
    assert run_cli(*args, "--sampler", "random", "--max-flops", "60M", "--n-trials", "8") == 0
    trials = optuna.load_study(study_name="f", storage=sqlite_url).trials
    space = get_space("s0")
    assert any(t.state == TrialState.FAIL for t in trials)
    for t in trials:
        flops = arch_flops(space, space.from_params(t.params), 100, 32)
        assert (t.state == TrialState.COMPLETE) == (flops <= 60_000_000)
        if t.state == TrialState.FAIL:
            assert "score" not in t.user_attrs and t.user_attrs["arch"]  # failed before scoring


def test_latency_objective(sqlite_url: str) -> None:
    args = ["search", "--space", "s0", "--teacher", "resnet20", *FAST, "--storage", sqlite_url, "--study", "l"]
    assert run_cli(*args, "--objectives", "score,params,latency", "--n-trials", "2") == 0
    study = optuna.load_study(study_name="l", storage=sqlite_url)
    assert study.directions == [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE, StudyDirection.MINIMIZE]
    for t in study.trials:
        assert t.values[2] == t.user_attrs["latency_ms"] > 0


def test_measure_latency_is_a_median_after_warm_up() -> None:
    calls: list[int] = []

    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(int(self.training))
            return x

    assert measure_latency(Net(), torch.zeros(2, 3), warmup=2, runs=5) >= 0
    assert calls == [0] * 7  # in eval mode, warm-up runs plus timed runs


def test_single_objective_records_no_new_fields() -> None:
    recorded = SearchConfig(space="s0").recorded(100, "channel")
    assert "objectives" not in recorded and "max_flops" not in recorded  # older studies resume unchanged
    recorded = SearchConfig(space="s0", objectives=("score", "flops"), max_flops=10**8).recorded(100, "channel")
    assert recorded["objectives"] == ["score", "flops"] and recorded["max_flops"] == 10**8


@pytest.mark.parametrize(
    ("text", "needle"),
    [("params,score", "score first"), ("score,size", "unknown 'size'"), ("score,params,params", "once")],
)
def test_parse_objectives_errors(text: str, needle: str) -> None:
    assert parse_objectives("score, Params") == ("score", "params")
    with pytest.raises(DiswotError, match=needle):
        parse_objectives(text)


@pytest.mark.integration
def test_bad_objectives_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run_process(
        "search", "--space", "s0", "--dataset", "synthetic", "--objectives", "score,size", cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "unknown 'size'" in result.stderr
    assert not list(tmp_path.iterdir())  # nothing created


def test_show_and_distill_pick_by_score_in_a_multi_objective_study(
    two_objective: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    from diswot.pipeline.cli.distill import _trial_to_distill

    study = two_objective.study
    best = max(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.values[0])
    assert _trial_to_distill(study, None).values[0] == best.values[0]  # distill's default: the best score
    assert _trial_to_distill(study, 3).number == 3  # distill --trial N: any trial, e.g. one from the front
    capsys.readouterr()
    assert run_cli("show", "--storage", two_objective.url, "--study", "mo", "--json", "--top", "3") == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["students"]
    assert rows[0]["value"] == best.values[0] and len(rows) == 3
    assert report["recommended"] is None and report["picks"] == []  # a front, not one student


def test_a_foreign_study_with_other_directions_is_refused_untouched(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    optuna.create_study(study_name="other", storage=sqlite_url, direction="minimize")
    args = ["search", "--space", "s0", "--teacher", "resnet20", *FAST, "--storage", sqlite_url, "--study", "other"]
    assert run_cli(*args, "--n-trials", "1") == 2
    assert "has directions (minimize) but --objectives score needs (maximize)" in capsys.readouterr().err
    study = optuna.load_study(study_name="other", storage=sqlite_url)
    assert not study.user_attrs and not study.trials


def test_max_flops_may_change_on_resume_when_allowed(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "search",
        "--space",
        "s0",
        "--teacher",
        "resnet20",
        *FAST,
        "--storage",
        sqlite_url,
        "--study",
        "fl",
        "--n-trials",
        "1",
    ]
    assert run_cli(*args, "--max-flops", "70M") == 0
    capsys.readouterr()
    assert run_cli(*args, "--max-flops", "60M") == 2
    err = capsys.readouterr().err
    assert "max_flops: 70000000 -> 60000000" in err and "--allow-change" in err
    assert run_cli(*args, "--max-flops", "60M", "--allow-change", "max-flops") == 0
    study = optuna.load_study(study_name="fl", storage=sqlite_url)
    assert study.user_attrs["diswot:config"]["max_flops"] == 70_000_000  # the record keeps the original
    assert study.user_attrs["diswot:config_changes"][-1]["changes"] == ["max_flops: 70000000 -> 60000000"]
    space = get_space("s0")
    assert arch_flops(space, space.from_params(study.trials[-1].params), 100, 32) <= 60_000_000  # the new limit holds
    assert run_cli(*args, "--allow-change", "max_flops") == 0  # dropping the limit is a change too
    changes = optuna.load_study(study_name="fl", storage=sqlite_url).user_attrs["diswot:config_changes"]
    assert changes[-1]["changes"] == ["max_flops: 70000000 -> None"]


def test_multi_objective_evolution_counts_equivalent_students_once() -> None:
    space = get_space("nb201")
    key = student_key(space)
    dead_pools = space.to_params(
        NB201Arch(("avg_pool_3x3", "skip_connect", "avg_pool_3x3", "skip_connect", "none", "none"))
    )
    skip = space.to_params(NB201Arch(("none", "none", "none", "skip_connect", "none", "none")))
    conv = space.to_params(NB201Arch(("nor_conv_3x3", "none", "none", "skip_connect", "none", "none")))
    assert key(dead_pools) == key(skip) != key(conv)
    assert key({"cell.1<-0": "bogus"}) == frozenset({("cell.1<-0", "bogus")})  # no student: its own params

    def run(objectives: int) -> list[Any]:
        sampler = make_sampler(
            "evolution", space=space, limits=Limits(), num_classes=100, seed=2, objectives=objectives
        )
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        for _ in range(60):
            trial = study.ask()
            arch = space.suggest(trial)
            study.tell(trial, (0.0, float(space.count_params(arch))))  # the smallest cells: many equivalents
        return [key(t.params) for t in study.trials]

    assert len(set(run(2))) == 60  # every trial a different student
    assert len(set(run(1))) < 60  # params alone let equivalent cells repeat (single-objective searches keep that)


def test_each_student_is_suggested_and_checked_once(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sampler's check before it proposes a student is the trial's: one limit check (and one
    FLOPs count) per distinct student, one suggestion per trial, under several objectives and a FLOPs limit."""
    from collections import Counter

    from diswot.pipeline import run_search
    from diswot.proxies import arch_flops as real_flops

    from .conftest import SMALL_CONFIG

    space = get_space("s0")
    checks: Counter[str] = Counter()
    suggests: Counter[int] = Counter()
    flops: Counter[str] = Counter()
    real_check, real_suggest = type(space).check, type(space).suggest

    def check(self: Any, arch: Any, *args: Any, **kwargs: Any) -> Any:
        checks[self.encode(arch)] += 1
        return real_check(self, arch, *args, **kwargs)

    def suggest(self: Any, trial: Any) -> Any:
        if isinstance(trial, optuna.Trial):  # not the sampler's recording trials
            suggests[trial.number] += 1
        return real_suggest(self, trial)

    def count_flops(space_: Any, arch: Any, *args: Any, **kwargs: Any) -> int:
        flops[space_.encode(arch)] += 1
        return int(real_flops(space_, arch, *args, **kwargs))

    monkeypatch.setattr(type(space), "check", check)
    monkeypatch.setattr(type(space), "suggest", suggest)
    monkeypatch.setattr("diswot.pipeline.assembly.arch_flops", count_flops)
    config = SearchConfig(**{**SMALL_CONFIG, "proxy": "diswot", "objectives": ("score", "params"), "max_flops": 10**9})
    study = run_search(config, sqlite_url, n_trials=6, progress=False, note_every=0)
    assert len(study.trials) == 6 and set(suggests.values()) == {1}
    smallest = space.encode(space.smallest(10))  # checked once more when the limits are checked feasible
    assert all(n <= 1 + (arch == smallest) for arch, n in checks.items()), checks
    assert {t.user_attrs["arch"] for t in study.trials} <= set(checks)
    assert set(flops.values()) == {1}, flops
