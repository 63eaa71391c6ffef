"""Distil ResNet-20 from ResNet-56 on the CIFAR-100 sample: epoch time, samples/s, fp32-vs-AMP loss.

Runs the pipeline's own training loop (:func:`diswot.pipeline.training.train_model`) with KD
(Eq. 1, gamma 0.1, alpha 0.9, rho 4) on the 916 real CIFAR-100 test images of
``tests/data/cifar/cifar100-test-first916.npz`` (100 fine classes), repeated ``--repeat`` times
per epoch so GPU epochs are long enough to time. On CUDA it uses AMP (bf16 where supported, else
fp16 with a GradScaler) and channels_last; on the CPU it runs in fp32 (``--amp off``) to show the
script works anywhere. Evaluation is on the same 916 images: this measures speed, not accuracy.

The loss check takes one batch and the same initial weights, and computes the first step's KD loss
in strict fp32 (TF32 off) and under autocast; the difference must be below ``--tolerance``
(1e-2). On the CPU the autocast check uses bf16.

    python benchmarks/bench_distill_gpu.py                         # CUDA when present, else CPU
    python benchmarks/bench_distill_gpu.py --device cpu --epochs 1 --repeat 1
    python benchmarks/bench_distill_gpu.py --teacher-weights runs/r56/checkpoint.pt --epochs 5 --repeat 20

Exit status 1 when the fp32/AMP loss check fails.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from diswot.pipeline.data import dataset_info
from diswot.pipeline.kd import kd_loss
from diswot.pipeline.teachers import build_teacher
from diswot.pipeline.training import LogReporter, TrainConfig, format_record, resolve_amp, train_model

NPZ = Path(__file__).resolve().parents[1] / "tests" / "data" / "cifar" / "cifar100-test-first916.npz"


class CifarSample(Dataset):
    """The CIFAR-100 sample as uint8 tensors, with the paper's augmentation (crop 32 pad 4, flip, normalise)."""

    def __init__(self, *, train: bool, repeat: int = 1) -> None:
        from torchvision.transforms import v2

        data = np.load(NPZ)
        self.images = torch.from_numpy(data["images"]).permute(0, 3, 1, 2).contiguous()  # N, 3, 32, 32 uint8
        self.labels = torch.from_numpy(data["fine_labels"]).long()
        self.repeat = repeat if train else 1
        info = dataset_info("cifar100")
        steps = [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()] if train else []
        self.transform = v2.Compose([*steps, v2.ToDtype(torch.float32, scale=True), v2.Normalize(info.mean, info.std)])

    def __len__(self) -> int:
        return len(self.labels) * self.repeat

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        i %= len(self.labels)
        return self.transform(self.images[i]), int(self.labels[i])


def loss_check(
    teacher: torch.nn.Module, student: torch.nn.Module, device: torch.device, amp: torch.dtype, batch: int
) -> dict[str, Any]:
    """First-step KD loss on one batch: strict fp32 vs autocast(``amp``), same weights and data."""
    data = CifarSample(train=False)
    x = torch.stack([data[i][0] for i in range(batch)]).to(device)
    y = data.labels[:batch].to(device)
    teacher, student = copy.deepcopy(teacher).to(device).eval(), copy.deepcopy(student).to(device).train()
    tf32 = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        state = copy.deepcopy(student.state_dict())  # BN running stats change in train mode
        with torch.no_grad():
            zt32 = teacher(x)
        l32 = kd_loss(student(x), zt32, y).total.item()
        student.load_state_dict(state)
        with torch.autocast(device.type, dtype=amp):
            with torch.no_grad():
                zt = teacher(x)
            zs = student(x)
        lamp = kd_loss(zs, zt, y).total.item()
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    return {
        "loss_fp32": l32,
        "loss_amp": lamp,
        "amp_dtype": str(amp).replace("torch.", ""),
        "abs_diff": abs(l32 - lamp),
    }


class _Print(LogReporter):
    def epoch_end(self, record: dict[str, Any]) -> None:  # noqa: D102
        print(format_record(record, self.epochs), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a JSON summary."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:N]")
    p.add_argument(
        "--amp", default="auto", choices=("auto", "bf16", "fp16", "off"), help="auto: bf16/fp16 on CUDA, off on CPU"
    )
    p.add_argument("--epochs", type=int, default=None, help="default 5 on CUDA, 1 on CPU")
    p.add_argument(
        "--repeat", type=int, default=None, help="passes over the 916 images per epoch (default 20 on CUDA, 1 on CPU)"
    )
    p.add_argument("--batch-size", type=int, default=64, help="the CIFAR preset's 64")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default 6 on CUDA, 0 on CPU)")
    p.add_argument("--teacher-weights", help="a trained ResNet-56 (100 classes); default: random init")
    p.add_argument("--tolerance", type=float, default=1e-2)
    p.add_argument("--json", type=Path, help="also write the summary here")
    a = p.parse_args(argv)

    device = torch.device(
        "cuda" if a.device == "auto" and torch.cuda.is_available() else ("cpu" if a.device == "auto" else a.device)
    )
    cuda = device.type == "cuda"
    epochs = a.epochs or (5 if cuda else 1)
    repeat = a.repeat or (20 if cuda else 1)
    workers = a.workers if a.workers is not None else (6 if cuda else 0)
    amp = resolve_amp(a.amp, device)

    torch.manual_seed(0)
    teacher = build_teacher("resnet56", 100, a.teacher_weights)
    student = build_teacher("resnet20", 100)
    check = loss_check(teacher, student, device, amp or torch.bfloat16, a.batch_size)
    check["ok"] = check["abs_diff"] < a.tolerance
    print(
        f"one-step KD loss: fp32 {check['loss_fp32']:.6f}, {check['amp_dtype']} autocast {check['loss_amp']:.6f}, "
        f"|diff| {check['abs_diff']:.2e} ({'ok' if check['ok'] else 'FAIL'} at {a.tolerance})",
        flush=True,
    )

    config = TrainConfig(
        model="resnet20",
        num_classes=100,
        dataset="cifar100-sample",
        image_size=32,
        preset="cifar",
        epochs=epochs,
        batch_size=a.batch_size,
        lr=0.05,
        momentum=0.9,
        weight_decay=5e-4,
        milestones=[150, 180, 210],
        workers=workers,
        amp={None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp],
        channels_last=cuda,
        device=str(device),
        teacher="resnet56",
        kd_gamma=0.1,
        kd_alpha=0.9,
        kd_rho=4.0,
    )
    with tempfile.TemporaryDirectory() as out:
        result = train_model(
            student,
            config=config,
            train_set=CifarSample(train=True, repeat=repeat),
            val_set=CifarSample(train=False),
            device=device,
            out_dir=out,
            teacher=teacher,
            reporter=_Print(),
            log_every=50,
        )
    steady = result.history[1:] or result.history  # the first epoch includes cuDNN autotuning
    summary = {
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "torch": torch.__version__,
        "amp": config.amp,
        "channels_last": config.channels_last,
        "epochs": epochs,
        "images_per_epoch": len(CifarSample(train=True, repeat=repeat)),
        "batch_size": a.batch_size,
        "workers": workers,
        "epoch_seconds": [round(r["seconds"], 3) for r in result.history],
        "train_samples_per_s": [round(r["samples_per_s"], 1) for r in result.history],
        "median_epoch_seconds": statistics.median(r["seconds"] for r in steady),
        "median_samples_per_s": statistics.median(r["samples_per_s"] for r in steady),
        "loss_per_epoch": [round(r["loss"], 4) for r in result.history],
        "top1_per_epoch": [round(r["top1"], 4) for r in result.history],
        "loss_check": check,
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if a.json:
        a.json.write_text(text + "\n")
    return 0 if check["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
