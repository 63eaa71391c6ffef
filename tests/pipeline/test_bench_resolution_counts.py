"""``benchmarks/bench_resolution_counts.py``: C_0 and C_1 are the weight count and half the FLOPs."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from diswot.proxies._flops import FlopHooks
from diswot.spaces import get_space


def _bench() -> ModuleType:
    folder = Path(__file__).resolve().parents[2] / "benchmarks"
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module("bench_resolution_counts")
    finally:
        sys.path.remove(str(folder))


@pytest.mark.parametrize(("space", "arch"), [("macro", "21012021"), ("s0", "ResNet[3,1,7]")])
def test_the_ends_of_the_family_are_the_weights_and_half_the_flops(space: str, arch: str) -> None:
    bench, s = _bench(), get_space(space)
    net = s.build(s.decode(arch), num_classes=10)
    with FlopHooks(net) as hooks:
        rows = bench.layer_sizes(net)
    weights = sum(m.weight.numel() for m in net.modules() if type(m).__name__ in ("Conv2d", "Linear"))
    assert bench.resolution_count(rows, 0.0) == weights
    assert 2 * bench.resolution_count(rows, 1.0) == hooks.per_image  # depthwise convolutions included


def test_the_report_ranks_c1_as_the_flops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "counts.json"
    assert _bench().main(["--benches", "s0", "--betas", "0,0.5,1", "--json", str(out)]) == 0
    kendall = json.loads(out.read_text())["kendall"]["s0"]["accuracy"]
    assert kendall["C_1"] == pytest.approx(kendall["flops"])
    assert set(kendall) == {"params", "flops", "C_0", "C_0.5", "C_1"}
    assert "C_0.5" in capsys.readouterr().out


def test_a_cache_adds_the_counts_agreement_with_the_teachers_term(tmp_path: Path) -> None:
    """A cache whose M_s is minus half the FLOPs: C_1 agrees with it exactly, on the students and
    on the reference sample."""
    bench, space = _bench(), get_space("s0")
    cache = tmp_path / "cache.jsonl"
    lines = []
    for arch in space.enumerate():
        rows = bench.layer_sizes(space.build(arch, num_classes=100))
        terms = {"semantic": -bench.resolution_count(rows, 1.0)}
        lines.append(
            json.dumps({"bench": "s0", "proxy": "diswot-flow", "seed": 0, "arch": space.encode(arch), "terms": terms})
        )
    cache.write_text("\n".join(lines) + "\n")
    out = tmp_path / "counts.json"
    assert bench.main(["--benches", "s0", "--betas", "0,1", "--cache", f"s0={cache}", "--json", str(out)]) == 0
    kendall = json.loads(out.read_text())["kendall"]["s0"]
    assert kendall["M_s, students"]["C_1"] == pytest.approx(1.0)
    assert kendall["M_s, reference"]["C_1"] == pytest.approx(1.0)
    assert kendall["M_s, students"]["C_0"] < 1.0
