"""``benchmarks/bench_cost_split.py`` runs on a real S0 student and reports every part of a scoring."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest


def test_the_cost_split_reports_every_part(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = Path(__file__).resolve().parents[2] / "benchmarks"
    sys.path.insert(0, str(folder))  # the script imports its neighbours
    try:
        bench = importlib.import_module("bench_cost_split")
    finally:
        sys.path.remove(str(folder))
    out = tmp_path / "split.json"
    assert bench.main(["--space", "s0", "--students", "1", "--reps", "1", "--json", str(out)]) == 0
    parts = json.loads(out.read_text())["ms"]
    assert set(parts) == {
        "build and init",
        "bare forward",
        "forward with FLOP hooks",
        "similarity terms",
        "SynFlow pass",
        "SynFlow, weight grads",
        "the scorer's raw terms",
    }
    assert all(value > 0 for value in parts.values())
    printed = capsys.readouterr().out
    assert "SynFlow pass" in printed and "x the bare forward" in printed
