"""On a CUDA GPU: several ``diswot search`` workers share the one GPU, in fp32 and bf16.

Skipped without a GPU (CI has none); ``benchmarks/run_gpu_checks.sh`` runs them on a GPU machine
before the GPU benchmarks.
"""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from diswot.pipeline.cli._workers import local_workers
from diswot.storage import open_storage, record

from .conftest import SMALL_S0, run_process

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.integration,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_workers_are_not_capped_on_a_gpu() -> None:
    assert local_workers(8, "cuda") == 8 == local_workers(8, "auto")


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_two_workers_share_one_gpu(precision: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gpu.db'}"
    args = [*SMALL_S0, "--device", "cuda", "--precision", precision, "--proxy", "diswot", "--rescore"]
    done = run_process(
        *args, "--storage", url, "--workers", "2", "--n-trials", "12", "--no-progress", "--pick-top", "0"
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    trials = optuna.load_study(study_name="diswot", storage=open_storage(url)).get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(12))
    assert all(t.state == TrialState.COMPLETE and math.isfinite(t.value or math.nan) for t in trials)
    assert sorted(t.system_attrs[record.WORKER]["index"] for t in trials) == [0] * 6 + [1] * 6
    assert all("reused_from" not in t.user_attrs for t in trials), "--rescore: every trial ran a forward pass"
