"""A library call leaves the process as it found it: a search and a distillation change no logging
handler, filter or log-record factory, no Optuna verbosity, no random state and no precision flag."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from torch.utils.data import Subset

from diswot.pipeline import SearchConfig, run_search
from diswot.pipeline.data import SyntheticImages, dataset_info
from diswot.pipeline.models import create_model
from diswot.pipeline.teachers import load_teacher
from diswot.pipeline.training import TrainConfig, teacher_for_training, train_model


def _process_state() -> dict[str, Any]:
    root = logging.getLogger()
    handlers = [*root.handlers, *logging.getLogger("optuna").handlers]
    return {
        "handlers": list(root.handlers),
        "filters": [(h, list(h.filters)) for h in handlers],
        "root_filters": list(root.filters),
        "factory": logging.getLogRecordFactory(),
        "optuna": optuna.logging.get_verbosity(),
        "torch_rng": torch.get_rng_state(),
        "python_rng": random.getstate(),
        "numpy_rng": np.random.get_state()[1].copy(),
        "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_tf32": torch.backends.cudnn.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
    }


def _assert_unchanged(before: dict[str, Any]) -> None:
    after = _process_state()
    for key in ("torch_rng", "numpy_rng"):
        assert (before.pop(key) == after.pop(key)).all(), key
    assert after == before


def test_search_and_distillation_leave_the_process_unchanged(tmp_path: Path) -> None:
    before = _process_state()
    config = SearchConfig(space="s0", teacher="resnet20", dataset="synthetic", batch_size=16)
    study = run_search(config, f"sqlite:///{tmp_path / 's.db'}", n_trials=3, progress=False, note_every=0)
    assert len(study.trials) == 3
    _assert_unchanged(dict(before))

    info = dataset_info("synthetic", image_size=32)
    train = Subset(SyntheticImages(train=True, num_classes=10, image_size=32), range(32))
    val = Subset(SyntheticImages(train=False, num_classes=10, image_size=32), range(16))
    kd = {"kd_gamma": 0.1, "kd_alpha": 0.9, "kd_rho": 4.0}
    train_config = TrainConfig(
        model="s0:ResNet[1,1,1]", num_classes=10, dataset="synthetic", image_size=32, preset="cifar", epochs=1,
        batch_size=16, lr=0.05, momentum=0.9, weight_decay=5e-4, milestones=[], amp="auto", teacher="resnet20", **kd,
    )  # fmt: skip
    result = train_model(
        create_model("s0:ResNet[1,1,1]", num_classes=10, seed=0),
        config=train_config,
        train_set=train,
        val_set=val,
        device=torch.device("cpu"),
        out_dir=tmp_path / "distill",
        teacher=teacher_for_training(load_teacher("resnet20", 10, distill=True), info),
    )
    assert result.final["epoch"] == 1 and "kl" in result.final
    assert train_config.amp == "auto"  # the caller's config is not rewritten
    _assert_unchanged(before)


def test_a_library_distillation_leaves_the_process_unchanged(tmp_path: Path) -> None:
    """``Search.distill`` seeds its run with the options' seed; the caller's states come back."""
    from diswot.pipeline.handle import Search

    teacher = tmp_path / "teacher"
    teacher_config = TrainConfig(
        model="resnet20", num_classes=10, dataset="synthetic", image_size=16, preset="cifar", epochs=1,
        batch_size=16, lr=0.05, momentum=0.9, weight_decay=5e-4, milestones=[], amp="off",
    )  # fmt: skip
    train = Subset(SyntheticImages(train=True, num_classes=10, image_size=16), range(32))
    val = Subset(SyntheticImages(train=False, num_classes=10, image_size=16), range(16))
    model = create_model("resnet20", num_classes=10, seed=0)
    train_model(model, config=teacher_config, train_set=train, val_set=val, device=torch.device("cpu"), out_dir=teacher)
    url = f"sqlite:///{tmp_path / 's.db'}"
    config = SearchConfig(
        space="s0",
        teacher="resnet20",
        teacher_weights=str(teacher),
        dataset="synthetic",
        batch_size=8,
        num_classes=10,
        image_size=16,
    )
    run_search(config, url, n_trials=2, progress=False, note_every=0, study_name="d")
    before = _process_state()
    done = Search.load(url, "d").distill(tmp_path / "student", epochs=1, batch_size=128, device="cpu")
    assert done is not None and done.num_classes == 10 and done.result.final["epoch"] == 1
    _assert_unchanged(before)
