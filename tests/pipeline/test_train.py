"""``diswot train`` on an ImageFolder of real CIFAR-100 images: checkpoints, presets, exact resume,
one-line errors, and a 2-process DDP run (gloo)."""

from __future__ import annotations

import re

import argparse
import importlib.util
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from diswot.pipeline.cli import build_parser
from diswot.pipeline.training import CHECKPOINT_NAME, read_results

from .conftest import cli_env, run_cli, run_process

_BUILD = Path(__file__).resolve().parents[1] / "data" / "cifar100_imagefolder" / "build.py"
_spec = importlib.util.spec_from_file_location("cifar100_imagefolder_build", _BUILD)
assert _spec is not None and _spec.loader is not None
_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_build)


def make_cifar_folder(root: Path, n_train: int = 320, n_val: int = 160) -> Path:
    """An ImageFolder (train/ + val/, 20 CIFAR-100 superclasses) of real CIFAR-100 test images."""
    return _build.build_imagefolder(root, n_train=n_train, n_val=n_val)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    """Exit 2, no traceback, one ``error:`` line that contains ``needle``."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error:"), proc.stderr
    assert needle in " ".join(lines), proc.stderr


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cifar_folder(tmp_path_factory.mktemp("cifar100") / "folder")


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cifar_folder(tmp_path_factory.mktemp("cifar100-small") / "folder", n_train=160, n_val=64)


def _stable(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-epoch records without the wall-clock fields."""
    return [{k: v for k, v in r.items() if k not in ("seconds", "train_seconds", "samples_per_s")} for r in history]


def test_train_resnet20_one_epoch_on_cifar_imagefolder(cifar_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "teacher"
    args = [
        "train",
        "--model",
        "resnet20",
        "--dataset",
        "imagefolder",
        "--data-dir",
        str(cifar_dir),
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--out",
        str(out),
    ]
    assert run_cli(*args) == 0
    ckpt = torch.load(out / CHECKPOINT_NAME, weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["arch"] == "resnet20" and ckpt["num_classes"] == 20
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "config", "history"} <= set(ckpt)
    assert {"python", "numpy", "torch", "cuda"} <= set(ckpt["rng"][0])
    cfg = ckpt["config"]
    # the paper's CIFAR recipe, with the epochs and batch overridden
    assert (cfg["preset"], cfg["lr"], cfg["momentum"], cfg["weight_decay"], cfg["milestones"], cfg["lr_decay"]) == (
        "cifar",
        0.05,
        0.9,
        5e-4,
        [150, 180, 210],
        0.1,
    )
    assert (cfg["epochs"], cfg["batch_size"], cfg["image_size"], cfg["amp"]) == (1, 32, 32, "off")
    (record,) = read_results(out)["history"]
    assert record["samples"] == 320 and 0 <= record["top1"] <= record["top5"] <= 1
    assert record["loss"] > 0 and record["lr"] == 0.05
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left behind
    # the checkpoint is refused without --resume, and is a finished run with it
    assert run_cli(*args) == 2
    assert run_cli(*args, "--resume") == 0
    assert len(read_results(out)["history"]) == 1


def _namespace(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def test_presets_and_overrides_resolve(cifar_dir: Path, tmp_path: Path) -> None:
    from diswot.pipeline.cli._training import resolve_run

    base = ["--dataset", "imagefolder", "--data-dir", str(cifar_dir), "--out", str(tmp_path)]
    _, preset, cfg, *_ = resolve_run(
        _namespace(["train", "--model", "resnet18", *base, "--preset", "imagenet"]), model="resnet18"
    )
    assert preset.name == "imagenet" and cfg.image_size == 224  # ImageFolder: the model's resolution
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay, cfg.milestones) == (90, 256, 0.1, 1e-4, [30, 60])
    assert cfg.teacher is None and cfg.kd_alpha is None
    argv = [
        "train",
        "--model",
        "resnet20",
        *base,
        "--epochs",
        "10",
        "--lr",
        "0.2",
        "--lr-step",
        "4",
        "--weight-decay",
        "0",
        "--batch-size",
        "16",
    ]
    _, preset, cfg, *_ = resolve_run(_namespace(argv), model="resnet20")
    assert (preset.name, cfg.epochs, cfg.lr, cfg.milestones, cfg.weight_decay, cfg.batch_size) == (
        "cifar",
        10,
        0.2,
        [4, 8],
        0.0,
        16,
    )
    kd = ["distill", "--storage", "sqlite:///x.db", "--study", "s", *base, "--kd-rho", "2"]
    _, _, cfg, *_ = resolve_run(_namespace(kd), model="s0:ResNet[1,1,1]", teacher="resnet20")
    assert (cfg.kd_gamma, cfg.kd_alpha, cfg.kd_rho) == (0.1, 0.9, 2.0)


@pytest.mark.integration
def test_resume_after_sigkill_matches_uninterrupted_run(small_dir: Path, tmp_path: Path) -> None:
    args = [
        "train",
        "--model",
        "s0:ResNet[1,1,1]",
        "--dataset",
        "imagefolder",
        "--data-dir",
        str(small_dir),
        "--epochs",
        "3",
        "--batch-size",
        "32",
        "--lr",
        "0.1",
        "--milestones",
        "2",
        "--seed",
        "7",
    ]
    assert run_cli(*args, "--out", str(tmp_path / "full")) == 0  # uninterrupted (in this process, one thread)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "diswot.pipeline.cli", *args, "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )
    deadline = time.monotonic() + 240
    while not (killed / CHECKPOINT_NAME).exists():  # appears atomically once epoch 1 is done
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = torch.load(killed / CHECKPOINT_NAME, weights_only=True)["epoch"]
    assert done < 3, "killed too late to test resuming"

    resumed = run_process(*args, "--out", str(killed), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a, b = read_results(tmp_path / "full"), read_results(killed)
    assert _stable(b["history"]) == _stable(a["history"])  # every epoch's loss, accuracy, top-1/5 equal
    assert a["history"][1]["lr"] == 0.1 and a["history"][2]["lr"] == pytest.approx(0.01)  # the schedule resumed
    wa = torch.load(tmp_path / "full" / CHECKPOINT_NAME, weights_only=True)["model"]
    wb = torch.load(killed / CHECKPOINT_NAME, weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_is_refused_for_another_run(small_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--dataset", "imagefolder", "--data-dir", str(small_dir), "--batch-size", "64", "--out", str(tmp_path)]
    assert run_cli("train", "--model", "s0:ResNet[1,1,1]", "--epochs", "1", *base) == 0
    capsys.readouterr()

    def refused(*args: str) -> str:
        assert run_cli("train", *args, *base, "--resume") == 2
        err = capsys.readouterr().err.strip()  # the run's header (a log line), then one error line
        error = err[err.index("error:") :]
        assert "Traceback" not in err and "error:" not in error[1:]
        return " ".join(error.split())

    assert "is for s0:ResNet[1,1,1], not resnet20" in refused("--model", "resnet20", "--epochs", "2")
    assert "lr: 0.05 -> 0.3" in refused("--model", "s0:ResNet[1,1,1]", "--epochs", "2", "--lr", "0.3")
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"\x80\x04 not a checkpoint at all")
    assert "corrupt or not a PyTorch file" in refused("--model", "s0:ResNet[1,1,1]", "--epochs", "2")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "resnet21"], "valid: resnet20"),
        (["--model", "s0:ResNet[2,2"], "ResNet["),
        (["--model", "resnet20", "--epochs", "0"], "--epochs must be >= 1"),
        (["--model", "resnet20", "--dataset", "imagefolder", "--data-dir", "/nonexistent"], "not available"),
    ],
)
def test_bad_options_give_one_line(
    args: list[str], needle: str, small_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = [] if "--data-dir" in args else ["--dataset", "imagefolder", "--data-dir", str(small_dir)]
    assert run_cli("train", *args, *data, "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


@pytest.mark.integration
def test_ddp_two_processes_gloo(small_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    proc = run_process(
        "train",
        "--model",
        "s0:ResNet[1,1,1]",
        "--dataset",
        "imagefolder",
        "--data-dir",
        str(small_dir),
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--out",
        str(out),
        extra=["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"],
    )
    causes = [line for line in proc.stderr.splitlines() if re.search(r"terminate|what\(\)|Error|error:", line)]
    assert proc.returncode == 0, "\n".join(causes[:20]) + "\n" + proc.stderr[-1500:]
    results = read_results(out)
    assert results["config"]["world_size"] == 2
    (record,) = results["history"]
    assert record["samples"] == 160  # both ranks' halves, summed
    ckpt = torch.load(out / CHECKPOINT_NAME, weights_only=True)
    assert len(ckpt["rng"]) == 2  # one RNG state per rank, written by rank 0
    assert sorted(p.name for p in out.iterdir()) == [CHECKPOINT_NAME, "results.json"]
    assert json.dumps(results)  # plain JSON


def test_the_summary_reads_naturally() -> None:
    """top-5 only with more than 5 classes (it is 100% with fewer); "no decay" without milestones."""
    from diswot.pipeline.cli._training import lr_text, summary_line
    from diswot.pipeline.training import TrainResult

    result = TrainResult(history=[{"epoch": 2, "top1": 0.5, "top5": 1.0, "loss": 0.25}], checkpoint=None)
    assert "top-5" not in summary_line(result, "runs/x", 3)
    assert "top-1 50.00%, top-5 100.00%" in summary_line(result, "runs/x", 10)
    assert lr_text(0.1, 0.1, []) == "lr 0.1, no decay"
    assert lr_text(0.05, 0.1, [150, 180]) == "lr 0.05 x0.1 at [150, 180]"
