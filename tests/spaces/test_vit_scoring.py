"""ViT students through the scoring pipeline: every proxy scores them or refuses them up front,
and ``diswot search``/``rank`` run on the ViT spaces (real networks, SQLite, synthetic data)."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest

from diswot.pipeline import SearchConfig
from diswot.pipeline.cli import main
from diswot.pipeline.assembly import make_scoring
from diswot.proxies import PROXIES, ProxyError
from diswot.spaces import get_space

#: proxies defined for one kind of network only: ReLU codes, BatchNorm variances, (B, C, H, W) maps
REFUSED = {"nwot": "nn.ReLU", "zen": "BatchNorm", "nst": "(B, C, H, W)"}


def _setup(space: str, proxy: str) -> object:
    config = SearchConfig(space=space, teacher="resnet20", dataset="synthetic", batch_size=4, proxy=proxy)
    return make_scoring(config)


@pytest.mark.parametrize("proxy", PROXIES.names())
def test_every_proxy_scores_a_pit_student_or_refuses_at_setup(proxy: str) -> None:
    if proxy in REFUSED:
        with pytest.raises(ProxyError) as info:
            _setup("pit-ti", proxy)
        message = str(info.value)
        assert REFUSED[proxy] in message and "pit-ti" in message and "\n" not in message
        return
    setup = _setup("pit-ti", proxy)
    space = get_space("pit-ti")
    terms = setup.scorer.raw(space.decode("B16|R2|D1,4,2|H2,2,2"))[0]  # type: ignore[attr-defined]
    assert all(math.isfinite(v) for v in terms.values())
    assert set(PROXIES.get(proxy).reference_terms or ("score",)) <= set(terms)  # ranked terms, or the score


@pytest.mark.slow
@pytest.mark.parametrize("proxy", PROXIES.names())
def test_every_proxy_scores_an_autoformer_student_or_refuses_at_setup(proxy: str) -> None:
    if proxy in REFUSED:
        with pytest.raises(ProxyError, match=REFUSED[proxy].replace("(", r"\(").replace(")", r"\)")):
            _setup("autoformer-ti", proxy)
        return
    setup = _setup("autoformer-ti", proxy)
    terms = setup.scorer.raw(get_space("autoformer-ti").smallest())[0]  # type: ignore[attr-defined]
    assert all(math.isfinite(v) for v in terms.values())


def test_refusals_are_checked_for_an_autoformer_space_too() -> None:
    for proxy, says in REFUSED.items():
        with pytest.raises(ProxyError, match="autoformer-ti students") as info:
            _setup("autoformer-ti", proxy)
        assert says in str(info.value)


def test_small_autoformer_search_completes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    args = ["search", "--space", "autoformer-ti", "--teacher", "resnet56", "--dataset", "synthetic"]
    small = ["--batch-size", "4", "--n-trials", "3", "--reference-size", "8"]
    small += ["--max-layers", "50", "--pick-top", "0"]  # 12-layer students, no pick stage: about 12 scorings
    assert main([*args, *small, "--storage", url, "--study", "vit", "--no-progress"]) == 0
    study = optuna.load_study(study_name="vit", storage=url)
    space = get_space("autoformer-ti")
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 3
    for t in complete:
        arch = space.from_params(t.params)
        assert t.user_attrs["arch"] == space.encode(arch)
        assert t.user_attrs["params"] == space.count_params(arch)
        assert t.user_attrs["flops"] == space.count_flops(arch)
        assert math.isfinite(t.value) and space.count_layers(arch) == 50


def test_rank_reads_a_csv_of_pit_students(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        "B16|R2|D1,4,2|H2,2,2,70.1",
        "B24|R4|D2,6,4|H2,4,4,73.5",
        "B32|R4|D2,6,4|H2,4,8,74.6",
        "B16|R2|D1,4,2|H4,4,4,71.0",
    ]
    csv = tmp_path / "truth.csv"
    csv.write_text("arch,accuracy\n" + "\n".join(rows) + "\n")
    base = ["rank", "--space", "pit-ti", "--ground-truth", str(csv), "--dataset", "synthetic", "--batch-size", "4"]
    assert main([*base, "--teacher", "resnet20", "--proxies", "params,diswot"]) == 0
    out = capsys.readouterr().out
    assert "pit-ti: 4 archs" in out and "params" in out and "diswot" in out
    assert main([*base, "--teacher", "resnet20", "--proxies", "nwot"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nn.ReLU" in err and "\n" not in err


def test_multi_objective_pit_search_under_every_limit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    args = ["search", "--space", "pit-ti", "--teacher", "resnet20", "--dataset", "synthetic", "--batch-size", "4"]
    limits = ["--max-params", "1M", "--max-flops", "600M", "--max-layers", "40"]
    small = ["--n-trials", "4", "--reference-size", "8", "--objectives", "score,flops"]
    assert main([*args, *limits, *small, "--storage", url, "--study", "front", "--no-progress"]) == 0
    study = optuna.load_study(study_name="front", storage=url)
    space = get_space("pit-ti")
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 4
    for t in complete:
        arch = space.from_params(t.params)
        assert space.count_params(arch) <= 1_000_000 and space.count_layers(arch) <= 40
        assert t.values[1] == t.user_attrs["flops"] == space.count_flops(arch) <= 600_000_000


def test_rank_without_proxies_skips_the_refusing_ones(capsys: pytest.CaptureFixture[str]) -> None:
    from diswot.pipeline.evaluation import supported_proxies

    kept, refusals = supported_proxies(PROXIES.names(), get_space("pit-ti"), skip=True)
    assert kept == [n for n in PROXIES.names() if n not in REFUSED]
    assert all(any(f"proxy {name!r} cannot score pit-ti students" in r for r in refusals) for name in REFUSED)
    with pytest.raises(ProxyError, match="nwot"):
        supported_proxies(["diswot", "nwot"], get_space("pit-ti"), skip=False)
