"""What a search prints and how it ends: failures, reused scores, limits, arch strings, SIGTERM, distilled trials."""

from __future__ import annotations

import signal
from pathlib import Path

import optuna
import pytest
from rich.console import Console

from diswot.pipeline.config import SearchConfig
from diswot.pipeline._format import fmt_limits
from diswot.pipeline.assembly import make_scoring
from diswot.pipeline.cli._report import print_top
from diswot.pipeline.objectives import SearchObjective
from diswot.storage.record import REUSED_FROM
from diswot.spaces import Limits, get_space

from .conftest import SMALL_S0, run_cli, run_process
from .test_workers import FAST, running, start, wait_until

NB201_ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|avg_pool_3x3~0|none~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|",
]


@pytest.mark.integration
def test_a_search_whose_trials_mostly_fail_says_why_and_exits_non_zero(tmp_path: Path) -> None:
    proc = run_process(
        "search",
        "--space",
        "s2-cifar",
        "--teacher",
        "resnet20",
        "--dataset",
        "synthetic",
        "--batch-size",
        "8",
        "--proxy",
        "diswot",
        "--sampler",
        "random",
        "--max-params",
        "500K",
        "--n-trials",
        "5",
        "--no-progress",
        "--storage",
        f"sqlite:///{tmp_path / 's.db'}",
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "5 of 5 trials failed" in errors[0] and "exceed the limit of 500,000" in errors[0]
    assert "--sampler evolution" in errors[0]
    warnings = [line for line in lines if "Trial" in line]
    assert len(warnings) == 5, "one warning per failed trial"
    assert all("failed: C" in w and "parameters:" not in w and "{" not in w for w in warnings), warnings
    assert "top 0 students" not in proc.stdout and "no completed trials" in proc.stdout
    assert "limits: at most 500.00K params," in " ".join(proc.stderr.split())  # the header: a log line


def test_a_known_student_reuses_its_stored_score() -> None:
    setup = make_scoring(
        SearchConfig(space="s0", teacher="resnet20", dataset="synthetic", batch_size=8, device="cpu", proxy="diswot")
    )
    calls = []
    score = setup.scorer.score
    setup.scorer.score = lambda arch: calls.append(arch) or score(arch)  # type: ignore[method-assign]
    study = optuna.create_study(direction="maximize")
    params = get_space("s0").to_params(get_space("s0").decode("ResNet[3,1,5]"))
    for _ in range(3):
        study.enqueue_trial(params)
    study.optimize(SearchObjective(setup), n_trials=3)
    first, *again = study.trials
    assert len(calls) == 1, "one forward for three trials of one student"
    assert REUSED_FROM not in first.user_attrs
    for t in again:
        assert t.value == first.value and t.user_attrs[REUSED_FROM] == first.number
        assert {k: v for k, v in t.user_attrs.items() if k != REUSED_FROM} == first.user_attrs
    # a new worker on the study reads the stored scores too
    setup.scorer.score = lambda arch: calls.append(arch) or score(arch)  # type: ignore[method-assign]
    study.enqueue_trial(params)
    study.optimize(SearchObjective(setup), n_trials=1)
    assert len(calls) == 1 and study.trials[-1].user_attrs[REUSED_FROM] == first.number


@pytest.mark.parametrize("rescore", [False, True])
def test_rescore_scores_a_known_student_again(tmp_path: Path, rescore: bool) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    # --max-layers 8 leaves one S0 student: ResNet[1,1,1]
    args = [*SMALL_S0, "--max-layers", "8", "--n-trials", "3", "--proxy", "diswot", "--pick-top", "0"]
    assert run_cli(*args, "--storage", url, *(["--rescore"] * rescore)) == 0
    trials = optuna.load_study(study_name="diswot", storage=url).trials
    assert {t.user_attrs["arch"] for t in trials} == {"ResNet[1,1,1]"} and len({t.value for t in trials}) == 1
    reused = [t.number for t in trials if REUSED_FROM in t.user_attrs]
    assert reused == ([] if rescore else [1, 2])
    assert len({t.user_attrs["score_seconds"] for t in trials}) == (3 if rescore else 1), "own time when rescored"


def test_limits_are_printed_for_people() -> None:
    assert fmt_limits(Limits()) == "none"
    assert fmt_limits(Limits(max_params=13_000_000, max_layers=20)) == "at most 13.00M params and 20 layers"
    assert fmt_limits(Limits(max_layers=5)) == "at most 5 layers"


def test_max_layers_zero_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(*FAST, "--max-layers", "0", "--storage", "sqlite:///:memory:") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--max-layers must be >= 1" in err and "max_layers" not in err.replace("--max-layers", "")


def _study_of_archs(archs: list[str], distilled: dict[int, float] | None = None) -> optuna.Study:
    study = optuna.create_study(direction="maximize", study_name="out")
    for i, arch in enumerate(archs):
        attrs = {"arch": arch, "params": 1000 * (i + 1), "flops": 10**6}
        if distilled and i in distilled:
            attrs.update(distill_top1=distilled[i], distill_epochs=240)
        study.add_trial(optuna.trial.create_trial(value=-float(i), user_attrs=attrs))
    return study


@pytest.mark.parametrize("width", [60, 80, 200])
def test_arch_strings_are_never_broken(width: int) -> None:
    console = Console(width=width, record=True)
    print_top(console, _study_of_archs(NB201_ARCHS))
    lines = console.export_text().splitlines()
    for arch in NB201_ARCHS:
        assert any(arch in line for line in lines), (arch, lines)


def test_show_has_distillation_columns_once_a_trial_is_distilled() -> None:
    console = Console(width=120, record=True)
    print_top(console, _study_of_archs(["ResNet[1,1,1]", "ResNet[3,3,3]"]))
    assert "distill" not in console.export_text()
    print_top(console, _study_of_archs(["ResNet[1,1,1]", "ResNet[3,3,3]"], distilled={1: 0.7123}))
    text = console.export_text()
    assert "distill top-1" in text and "71.23%" in text and "240" in text


def test_search_names_the_objective_after_the_proxy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert run_cli(*FAST, "--proxy", "nwot", "--n-trials", "1", "--storage", url, "--study", "m") == 0
    assert optuna.load_study(study_name="m", storage=url).metric_names == ["nwot"]


@pytest.mark.integration
def test_sigterm_prints_no_trial_failure_warnings(tmp_path: Path) -> None:
    url = f"journal://{tmp_path / 's.log'}"
    proc = start(*FAST, "--batch-size", "64", "--study", "t", "--n-trials", "500", url=url)
    wait_until(lambda: bool(running(url, "t")), 300, proc)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, out[-3000:]
    assert "KeyboardInterrupt" not in out and "failed" not in out.replace("failed trials", ""), out[-3000:]
    assert "interrupted" in out


def test_figures_and_counts_read_naturally() -> None:
    from diswot.pipeline._format import fmt_count, plural

    assert fmt_count(1e99) == "1e+99" and fmt_count(999e9) == "999.00G" and fmt_count(259890) == "259.89K"
    assert plural(1, "student") == "1 student" and plural(2, "student") == "2 students"
