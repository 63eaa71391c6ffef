"""The quick start's phase split: what ``benchmarks/bench_quickstart.py`` reads from a real search."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


def _module() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_quickstart.py"
    spec = importlib.util.spec_from_file_location("bench_quickstart", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_the_split_reads_every_phase_of_a_real_search() -> None:
    """Each phase of a small search is found (none is zero) and the phases add up to its wall time."""
    bench = _module()
    args = "search --space s0 --teacher resnet20 --dataset synthetic --image-size 16 --batch-size 8"
    split = bench.one_run([*args.split(), "--n-trials", "10", "--reference-size", "8", "--pick-top", "2"])
    assert split["trials_run"] == 10
    for phase in ("start-up", "reference sample", "trials", "pick"):
        assert 0 < split[phase] < split["wall"], phase
    assert sum(split[p] for p in bench.PHASES) == pytest.approx(split["wall"])


def test_the_quick_start_it_times_is_the_readme_s() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"diswot {_module().QUICK_START}\n" in readme
