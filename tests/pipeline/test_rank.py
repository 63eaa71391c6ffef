"""``diswot rank`` and :mod:`diswot.pipeline.ranking`: metrics, CSV checks, CLI, determinism."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from diswot.pipeline.errors import DiswotError, ProxyError
from diswot.pipeline.ranking import (
    correlations,
    default_top_k,
    load_ground_truth,
    rank_proxy,
    summarise_repeats,
    top_k_metrics,
)
from diswot.spaces import get_space, naslib_to_nb201

from .conftest import run_cli

DATA = Path(__file__).resolve().parents[1] / "data"
S0_ARCHS = ["ResNet[1,1,1]", "ResNet[3,1,1]", "ResNet[1,3,3]", "ResNet[3,3,3]", "ResNet[5,3,1]"]
FAST = ["--dataset", "synthetic", "--image-size", "16", "--batch-size", "4", "--device", "cpu", "--teacher", "resnet20"]


def write_csv(path: Path, rows: list[tuple[str, object]], header: str = "arch,accuracy") -> Path:
    path.write_text(header + "\n" + "".join(f"{a},{v}\n" for a, v in rows))
    return path


@pytest.fixture()
def s0_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "gt.csv", [(a, 60 + i * 1.5) for i, a in enumerate(S0_ARCHS)])


# ---------------------------------------------------------------- metrics


def test_correlations_are_scipy_and_bounded() -> None:
    acc = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert correlations(acc * 3, acc) == pytest.approx({"kendall": 1.0, "spearman": 1.0, "pearson": 1.0})
    assert correlations(-acc, acc)["kendall"] == pytest.approx(-1.0)
    s = np.array([0.3, 0.1, 0.5, 0.4, 0.9])
    got = correlations(s, acc)
    assert got["kendall"] == pytest.approx(stats.kendalltau(s, acc)[0])
    assert got["spearman"] == pytest.approx(stats.spearmanr(s, acc)[0])
    assert got["pearson"] == pytest.approx(stats.pearsonr(s, acc)[0])
    # the paper's A.2 tau: sum sgn(b_i - b_j) sgn(g_i - g_j) / C(n, 2) (no ties)
    n = len(s)
    tau = sum(np.sign(acc[i] - acc[j]) * np.sign(s[i] - s[j]) for i in range(n) for j in range(i + 1, n)) / (
        n * (n - 1) / 2
    )
    assert got["kendall"] == pytest.approx(tau)
    assert correlations(np.ones(5), acc) == {"kendall": None, "spearman": None, "pearson": None}


def test_top_k_metrics() -> None:
    acc = [90.0, 80.0, 70.0, 60.0, 50.0]
    assert top_k_metrics([5, 4, 3, 2, 1], acc, 2) == {"precision_at_k": 1.0, "best_rank_in_top_k": 1.0}
    assert top_k_metrics([1, 5, 4, 2, 3], acc, 2) == {"precision_at_k": 0.5, "best_rank_in_top_k": 2.0}
    assert top_k_metrics([1, 2, 3, 4, 5], acc, 2) == {"precision_at_k": 0.0, "best_rank_in_top_k": 4.0}
    assert top_k_metrics([1, 2], acc[:2], 10)["precision_at_k"] == 1.0  # k clipped to n
    assert default_top_k(64) == 7 and default_top_k(5) == 1


def test_summarise_repeats_mean_std() -> None:
    reps = [{"kendall": 0.5, "spearman": 0.6}, {"kendall": 0.7, "spearman": None}]
    out = summarise_repeats(reps)
    assert out["kendall"] == pytest.approx(0.6) and out["kendall_std"] == pytest.approx(0.1)
    assert out["spearman"] == pytest.approx(0.6) and out["spearman_std"] == 0.0
    assert out["pearson"] is None and out["pearson_std"] is None


def test_rank_proxy_leaves_failures_out(s0_csv: Path) -> None:
    truth = load_ground_truth(s0_csv, get_space("s0"))

    def score(arch: object) -> list[float]:
        if str(arch) == "ResNet[3,1,1]":
            raise ProxyError("boom")
        return [float(sum(arch.depths)), float(sum(arch.depths)) + 0.5]  # type: ignore[attr-defined]

    res = rank_proxy("fake", truth, score, top_k=2)
    assert res.failed == {"ResNet[3,1,1]": "boom"}
    assert res.scores["ResNet[3,1,1]"] is None and res.scores["ResNet[3,3,3]"] == 9.25  # mean over repeats
    assert len(res.per_repeat) == 2 and res.metrics["kendall_std"] == 0.0


# ---------------------------------------------------------------- CSV checks


@pytest.mark.parametrize(
    "rows,header,message",
    [
        (
            [("ResNet[1,1,1]", 1), ("ResNet[2,1,1]", 2), ("ResNet[3,3,3]", 3)],
            "arch,accuracy",
            r"gt\.csv:3: arch 'ResNet\[2,1,1\]'",
        ),
        (
            [("ResNet[1,1,1]", 1), ("ResNet[3,3,3]", 2), ("ResNet[1,1,1]", 3)],
            "arch,accuracy",
            r"gt\.csv:4: .*duplicate of line 2",
        ),
        ([("ResNet[1,1,1]", 1), ("ResNet[3,3,3]", 2)], "arch,accuracy", "2 architecture row.*at least 3"),
        (
            [("ResNet[1,1,1]", 1), ("ResNet[3,3,3]", "nan"), ("ResNet[5,5,5]", 3)],
            "arch,accuracy",
            r"gt\.csv:3: accuracy 'nan' is not a finite",
        ),
        (
            [("ResNet[1,1,1]", 1), ("ResNet[3,3,3]", "high"), ("ResNet[5,5,5]", 3)],
            "arch,accuracy",
            r"gt\.csv:3: accuracy 'high' is not a number",
        ),
        ([("ResNet[1,1,1]", 1)], "arch,acc", "lacks the column.*accuracy"),
    ],
)
def test_ground_truth_errors_name_the_line(tmp_path: Path, rows: list, header: str, message: str) -> None:
    path = write_csv(tmp_path / "gt.csv", rows, header)
    with pytest.raises(DiswotError, match=message):
        load_ground_truth(path, get_space("s0"))


def test_ground_truth_reads_extra_columns_and_canonicalises(tmp_path: Path) -> None:
    path = tmp_path / "gt.csv"
    path.write_text('name,accuracy,arch\nx,70.5, ResNet[ 7,1,3]\ny,71,"ResNet[3,3,3]"\n\nz,69,ResNet[1,1,1]\n')
    truth = load_ground_truth(path, get_space("s0"))
    assert truth.names == ("ResNet[7,1,3]", "ResNet[3,3,3]", "ResNet[1,1,1]")
    assert truth.lines == (2, 3, 5) and list(truth.accuracy) == [70.5, 71.0, 69.0]
    with pytest.raises(DiswotError, match="does not exist"):
        load_ground_truth(tmp_path / "missing.csv", get_space("s0"))


# ---------------------------------------------------------------- CLI


def test_cli_errors_are_one_line_exit_2(tmp_path: Path, s0_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_csv(tmp_path / "bad.csv", [("ResNet[1,1,1]", 1), ("oops", 2), ("ResNet[3,3,3]", 3)])
    cases = [
        (["--ground-truth", str(bad)], "bad.csv:3: arch 'oops'"),
        (["--ground-truth", str(s0_csv), "--proxies", "params,nope"], "unknown proxy 'nope'; known proxies: "),
        (["--ground-truth", str(s0_csv), "--proxies", "params,params"], "more than once"),
        (["--ground-truth", str(s0_csv), "--top-k", "0"], "--top-k must be >= 1"),
    ]
    for extra, message in cases:
        assert run_cli("rank", "--space", "s0", *extra, *FAST) == 2
        err = capsys.readouterr().err
        assert message in " ".join(err.split()), err
        assert len(err.strip().splitlines()) == 1, err
    assert run_cli("rank", "--space", "s0", "--ground-truth", str(s0_csv), "--proxies", "nope", *FAST) == 2
    err = " ".join(capsys.readouterr().err.split())
    for known in ("params", "synflow", "diswot", "nst"):
        assert known in err


def test_cli_s0_json_schema_and_identical_twice(tmp_path: Path, s0_csv: Path) -> None:
    outs = []
    for i in range(2):
        out = tmp_path / f"r{i}.json"
        args = ["--proxies", "params,grad_norm,diswot", "--repeats", "2", "--seed", "3", "--json", str(out)]
        assert run_cli("rank", "--space", "s0", "--ground-truth", str(s0_csv), *args, *FAST) == 0
        outs.append(out.read_text())
    assert outs[0] == outs[1]
    doc = json.loads(outs[0])
    assert doc["space"] == "s0" and doc["n"] == len(S0_ARCHS) and doc["repeats"] == 2
    assert set(doc["proxies"]) == {"params", "grad_norm", "diswot"}
    for entry in doc["proxies"].values():
        for key in ("kendall", "spearman", "pearson", "precision_at_k", "best_rank_in_top_k"):
            assert key in entry and f"{key}_std" in entry
        assert set(entry["scores"]) == set(S0_ARCHS) and entry["failed"] == 0
    # params grows with depth here, and so does the made-up accuracy
    assert doc["proxies"]["params"]["spearman"] == pytest.approx(
        stats.spearmanr([get_space("s0").count_params(get_space("s0").decode(a), 100) for a in S0_ARCHS], range(5))[0]
    )


def test_cli_nb201_with_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    zc = json.loads((DATA / "nb201-zc-proxies-725.json").read_text())["cifar10"]
    keys = list(zc)[:6]
    rows = [(str(naslib_to_nb201(ast.literal_eval(k))), zc[k]["val_accuracy"]) for k in keys]
    csv_path = write_csv(tmp_path / "nb201.csv", rows)
    plots = tmp_path / "plots"
    args = [
        "--proxies",
        "params,synflow",
        "--plot",
        str(plots),
        "--json",
        str(tmp_path / "o.json"),
        "--num-classes",
        "10",
    ]
    assert run_cli("rank", "--space", "nb201", "--ground-truth", str(csv_path), *args, *FAST) == 0
    assert sorted(p.name for p in plots.iterdir()) == ["params.png", "regret.png", "synflow.png"]
    doc = json.loads((tmp_path / "o.json").read_text())
    assert doc["n"] == 6
    naslib = [zc[k]["params"]["score"] for k in keys]
    acc = [zc[k]["val_accuracy"] for k in keys]
    assert doc["proxies"]["params"]["kendall"] == pytest.approx(stats.kendalltau(naslib, acc)[0])
    out = capsys.readouterr().out
    assert "Kendall" in out and "synflow" in out


@pytest.mark.slow
def test_cli_all_64_s0_architectures(tmp_path: Path) -> None:
    s0 = get_space("s0")
    archs = list(s0.enumerate())
    assert len(archs) == 64
    rng = np.random.default_rng(0)
    # a made-up ground truth: accuracy grows with log(params), plus noise
    rows = [(s0.encode(a), 60 + 5 * np.log(s0.count_params(a, 100)) + 0.1 * float(rng.normal())) for a in archs]
    csv_path = write_csv(tmp_path / "s0.csv", rows)
    out = tmp_path / "s0.json"
    args = ["--proxies", "params,flops,diswot", "--json", str(out)]
    assert run_cli("rank", "--space", "s0", "--ground-truth", str(csv_path), *args, *FAST) == 0
    doc = json.loads(out.read_text())
    assert doc["n"] == 64 and doc["top_k"] == 7
    assert doc["proxies"]["params"]["spearman"] > 0.9
    assert all(doc["proxies"][p]["kendall"] is not None for p in ("params", "flops", "diswot"))


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_kendall_is_paired_and_reads_size_counts() -> None:
    """The truth beats noisy counts in every resample, its reverse in none; failures are left out."""
    from diswot.pipeline.ranking import bootstrap_kendall

    rng = np.random.default_rng(0)
    acc = rng.normal(70, 2, 60)
    noisy = acc + rng.normal(0, 2, 60)
    failing = acc.copy()
    failing[:5] = np.nan  # five students the proxy failed on
    scores = {"truth": acc, "reverse": -acc, "params": noisy, "flops": noisy[::-1].copy(), "failing": failing}
    out = bootstrap_kendall(scores, acc, resamples=100, seed=1)
    assert out["truth"]["beats_size"] == 1.0 and out["truth"]["kendall_lo"] == pytest.approx(1.0)
    assert out["reverse"]["beats_size"] == 0.0 and out["reverse"]["kendall_hi"] == pytest.approx(-1.0)
    assert out["truth"]["above"]["params"] == 1.0 and out["reverse"]["above"]["params"] == 0.0
    assert out["params"]["beats_size"] == out["params"]["above"]["flops"]  # a count is judged against the other
    assert out["failing"]["kendall_lo"] == pytest.approx(1.0)  # its tau over the students it scored
    lo, hi = out["params"]["kendall_lo"], out["params"]["kendall_hi"]
    assert lo < float(stats.kendalltau(noisy, acc).statistic) < hi
    assert bootstrap_kendall(scores, acc, resamples=100, seed=1) == out  # seeded
    assert bootstrap_kendall({"truth": acc}, acc, resamples=5)["truth"]["beats_size"] is None
    with pytest.raises(DiswotError, match="resamples"):
        bootstrap_kendall(scores, acc, resamples=0)


def test_rank_cli_bootstrap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``diswot rank --bootstrap N``: the interval and the share above the counts, in the table and the JSON."""
    out = tmp_path / "rank.json"
    args = ["rank", "--space", "s0", "--ground-truth", "s0:cifar100-kd", "--proxies", "params,flops"]
    assert run_cli(*args, "--dataset", "synthetic", "--bootstrap", "50", "--json", str(out)) == 0
    text = capsys.readouterr().out
    assert "tau 5-95%" in text and "> size" in text
    doc = json.loads(out.read_text())
    assert doc["bootstrap"]["resamples"] == 50
    params = doc["bootstrap"]["proxies"]["params"]
    assert params["kendall_lo"] < doc["proxies"]["params"]["kendall"] < params["kendall_hi"]
    assert params["beats_size"] > 0.9 and doc["bootstrap"]["proxies"]["flops"]["beats_size"] < 0.1
    assert run_cli(*args, "--dataset", "synthetic", "--bootstrap", "0") == 2
    assert "--bootstrap" in capsys.readouterr().err


def test_json_without_a_file_prints_only_the_json(s0_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--json`` alone: the results as JSON on stdout instead of the table, as ``score`` and ``show``."""
    capsys.readouterr()
    assert (
        run_cli("rank", "--space", "s0", "--ground-truth", str(s0_csv), "--proxies", "params,flops", "--json", *FAST)
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["proxies"]) == {"params", "flops"} and doc["n"] == len(S0_ARCHS)
