"""``diswot search --workers 2`` on the CPU: two worker processes, one study, no trial twice."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from diswot.storage import open_storage, record

from .conftest import SMALL_S0, run_process

FAST = [
    *SMALL_S0,
    "--no-progress",
    "--top",
    "3",
]


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_workers_one_study_no_duplicate_trial(kind: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}" if kind == "sqlite" else f"journal:///{tmp_path / 's.log'}"
    done = run_process(
        *FAST, "--storage", url, "--study", "two", "--workers", "2", "--n-trials", "16", "--device", "cpu", timeout=900
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    trials = optuna.load_study(study_name="two", storage=open_storage(url)).get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(16)), "16 trials, each number once"
    assert len({t._trial_id for t in trials}) == 16
    assert all(t.state == TrialState.COMPLETE for t in trials)
    by_worker = [t.system_attrs[record.WORKER]["index"] for t in trials]
    assert sorted(by_worker) == [0] * 8 + [1] * 8, "each worker ran its share, no trial ran twice"
    for t in trials:  # each trial holds its own, complete record
        assert {"arch", "params", "flops", "layers", "score", "score_seconds"} <= set(t.user_attrs)
        assert t.user_attrs["score"] == t.value


def _bench(name: str):  # noqa: ANN202
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_gpu_rows_are_not_measured_without_a_gpu(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _bench("bench_gpu_search")
    monkeypatch.setattr(bench.torch.cuda, "is_available", lambda: False)
    assert bench.main(["--workers", "1,8", "--precisions", "fp32,bf16"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("| fp32", "| bf16"))]
    assert len(rows) == 4 and all("not measured" in row for row in rows)


def test_trial_split_is_cycle_minus_scoring() -> None:
    from datetime import datetime, timedelta

    bench = _bench("bench_trial_split")
    t0 = datetime(2026, 1, 1)
    starts = [0.0, 0.30, 0.55, 0.90, 1.20]  # cycles of 300, 250, 350, 300 ms
    trials = [optuna.trial.create_trial(value=0.0, user_attrs={"score_seconds": 0.2}) for _ in starts]
    for i, (t, s) in enumerate(zip(trials, starts)):
        t.number = 10 + i
        t.datetime_start = t0 + timedelta(seconds=s)
    rows = bench.split(trials, window=2)
    assert [(r["from"], r["to"]) for r in rows] == [(10, 12), (12, 14)]
    assert rows[0]["cycle_ms"] == pytest.approx(275) and rows[0]["rest_ms"] == pytest.approx(75)
    assert rows[1]["rest_over_scoring"] == pytest.approx(125 / 200)
