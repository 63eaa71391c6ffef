"""Checkpoints: atomic writes, ``weights_only`` loading, RNG round trips, one-line errors."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from diswot.pipeline.checkpoint import (
    FORMAT,
    CheckpointError,
    check_config,
    load_checkpoint,
    load_model_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def _payload(model: nn.Module) -> dict:
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [2, 4], gamma=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    sched.step()
    return {
        "arch": "toy",
        "epoch": 1,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "scaler": torch.amp.GradScaler("cpu", enabled=False).state_dict(),
        "rng": [rng_state()],
        "config": {"lr": 0.1, "milestones": [2, 4], "teacher": None},
        "history": [{"epoch": 1, "loss": 1.5}],
    }


def test_round_trip_with_weights_only(tmp_path: Path) -> None:
    model = nn.Linear(3, 2)
    path = save_checkpoint(tmp_path / "c.pt", _payload(model))
    raw = torch.load(path, weights_only=True)  # plain tensors and containers only
    assert raw["format"] == FORMAT and raw["epoch"] == 1
    data = load_checkpoint(path)
    other = nn.Linear(3, 2)
    load_model_state(other, data["model"], what="toy")
    assert torch.equal(other.weight, model.weight)
    assert data["scheduler"]["last_epoch"] == 1 and data["optimizer"]["state"][0]["momentum_buffer"].shape == (2, 3)


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_checkpoint(tmp_path / "c.pt", _payload(nn.Linear(3, 2)))
    before = path.read_bytes()

    def broken_save(obj: object, fh: object) -> None:
        fh.write(b"partial")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, _payload(nn.Linear(3, 2)))
    assert path.read_bytes() == before  # the old checkpoint is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # and no temp file is left


def test_rng_states_round_trip() -> None:
    state = rng_state()
    first = (random.random(), np.random.rand(), torch.rand(3))
    set_rng_state(state)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0] and first[1] == second[1] and torch.equal(first[2], second[2])


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"\x00garbage, not a checkpoint" * 10, "corrupt or not a PyTorch file"),
        (None, "not a diswot training checkpoint"),
        ("truncated", "corrupt or not a PyTorch file"),
    ],
)
def test_bad_files_give_one_line(tmp_path: Path, content: object, needle: str) -> None:
    path = tmp_path / "bad.pt"
    if content is None:
        torch.save(nn.Linear(3, 2).state_dict(), path)  # a plain state dict, not a training checkpoint
    elif content == "truncated":
        good = save_checkpoint(tmp_path / "good.pt", _payload(nn.Linear(3, 2))).read_bytes()
        path.write_bytes(good[: len(good) // 2])
    else:
        path.write_bytes(content)  # type: ignore[arg-type]
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert needle in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_mismatches_are_named(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"shape mismatch at weight: file \(2, 3\) vs model \(4, 3\)"):
        load_model_state(nn.Linear(3, 4), nn.Linear(3, 2).state_dict(), what="toy")
    with pytest.raises(CheckpointError, match="1 missing keys"):
        load_model_state(nn.Linear(3, 2), {"weight": torch.zeros(2, 3)}, what="toy")
    with pytest.raises(CheckpointError, match=r"lr: 0.1 -> 0.2") as info:
        check_config({"lr": 0.1, "epochs": 2}, {"lr": 0.2, "epochs": 5}, mutable=("epochs",))
    assert "epochs" not in str(info.value)
    check_config({"lr": 0.1, "epochs": 2}, {"lr": 0.1, "epochs": 5}, mutable=("epochs",))
