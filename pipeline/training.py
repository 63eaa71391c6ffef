"""The one training loop, for teachers (cross-entropy) and students (KD, supplementary Eq. 1).

Step 3 of DisWOT's process (supplementary B.2): distil the searched student with vanilla KD from
the teacher, under the CIFAR recipe of B.1 or the ImageNet recipe of B.3 (:mod:`.presets`).

Reproducibility: the training order comes from a sampler seeded with ``seed + epoch``
(:class:`~torch.utils.data.DistributedSampler`, also for one process), DataLoader workers get
seeds from a generator seeded per epoch, and every rank's RNG states are saved with each
checkpoint and restored on resume, so a resumed CPU run reaches exactly the uninterrupted metrics.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from .checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    atomic_write_text,
    check_config,
    load_checkpoint,
    load_model_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
    to_jsonable,
)
from .data import DatasetInfo, SyntheticImages, check_images, eval_transform, load_dataset, read_image, train_transform
from .distributed import DistEnv, all_gather_objects, all_reduce_sum, barrier
from ._choices import RESULTS_NAME
from .errors import DiswotError
from ._scoped import precision_flags, preserved_rng
from .kd import KDLoss, TeacherInput
from .models import resolve_model
from .teachers import Teacher

__all__ = [
    "CHECKPOINT_NAME",
    "RESULTS_NAME",
    "LogReporter",
    "Reporter",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "make_datasets",
    "resolve_amp",
    "train_model",
]

log = logging.getLogger(__name__)


#: config fields that may change when resuming (they do not change what is being trained)
RESUME_MUTABLE = ("epochs", "workers", "amp", "channels_last", "world_size", "data_dir", "val_dir", "device")


@dataclass
class TrainConfig:
    """The resolved configuration of one training run (stored in every checkpoint).

    ``batch_size`` is the global batch (split evenly over ``torchrun`` processes).
    ``teacher`` set means distillation with Eq. 1 (``kd_gamma``, ``kd_alpha``, ``kd_rho``).
    """

    model: str
    num_classes: int
    dataset: str
    image_size: int
    preset: str
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    milestones: list[int]
    lr_decay: float = 0.1
    nesterov: bool = False
    seed: int = 0
    workers: int = 0
    amp: str = "off"
    channels_last: bool = False
    world_size: int = 1
    device: str = "cpu"
    data_dir: str | None = None
    val_dir: str | None = None
    teacher: str | None = None
    teacher_weights: str | None = None
    kd_gamma: float | None = None
    kd_alpha: float | None = None
    kd_rho: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = [
            ("`epochs`", self.epochs >= 1, "at least 1"),
            ("`batch_size`", self.batch_size >= 1, "at least 1"),
            ("`lr`", self.lr > 0 and math.isfinite(self.lr), "a positive number"),
            ("`momentum`", 0 <= self.momentum < 1, "in [0, 1)"),
            ("`weight_decay`", self.weight_decay >= 0, ">= 0"),
            ("`lr_decay`", 0 < self.lr_decay <= 1, "in (0, 1]"),
            ("`workers`", self.workers >= 0, ">= 0"),
            (
                "`milestones`",
                all(m > 0 for m in self.milestones) and list(self.milestones) == sorted(self.milestones),
                "increasing positive epochs",
            ),
        ]
        if self.teacher is not None:
            checks += [
                ("`kd_gamma`", (self.kd_gamma or 0) >= 0, ">= 0"),
                ("`kd_alpha`", (self.kd_alpha or 0) >= 0, ">= 0"),
                ("`kd_rho`", (self.kd_rho or 0) > 0, "> 0"),
            ]
        for flag, ok, what in checks:
            if not ok:
                raise DiswotError(f"{flag} must be {what}, got {getattr(self, flag[2:].replace('-', '_'))!r}")
        if self.batch_size % self.world_size:
            raise DiswotError(
                f"`batch_size` {self.batch_size} (the global batch) must divide evenly over {self.world_size} processes"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (checkpoints, results, study attributes)."""
        values: dict[str, Any] = to_jsonable(asdict(self))
        return values


@dataclass
class TrainResult:
    """Per-epoch history and where the final checkpoint is."""

    history: list[dict[str, Any]]
    checkpoint: Path | None
    resumed_from: int = 0

    @property
    def final(self) -> dict[str, Any]:
        """The last epoch's record."""
        return self.history[-1] if self.history else {}


class Reporter(Protocol):
    """Progress callbacks (the CLI draws a rich progress bar; the library only logs)."""

    def epoch_start(self, epoch: int, epochs: int, batches: int) -> None: ...  # noqa: D102

    def batch(self, done: int, loss: float, acc: float) -> None: ...  # noqa: D102

    def epoch_end(self, record: dict[str, Any]) -> None: ...  # noqa: D102


class LogReporter:
    """Reports each finished epoch through :mod:`logging`."""

    def epoch_start(self, epoch: int, epochs: int, batches: int) -> None:  # noqa: D102
        self.epochs = epochs

    def batch(self, done: int, loss: float, acc: float) -> None:  # noqa: D102
        pass

    def epoch_end(self, record: dict[str, Any]) -> None:  # noqa: D102
        log.info(format_record(record, getattr(self, "epochs", record["epoch"])))


def format_record(record: dict[str, Any], epochs: int) -> str:
    """One line per epoch: loss, accuracies, lr, time."""
    return (
        f"epoch {record['epoch']}/{epochs}: loss {record['loss']:.4f}, train acc {100 * record['train_acc']:.2f}%, "
        f"top-1 {100 * record['top1']:.2f}%, top-5 {100 * record['top5']:.2f}%, lr {record['lr']:.4g}, "
        f"{record['seconds']:.1f}s ({record['samples_per_s']:.0f} img/s)"
    )


__all__ += ["format_record"]


# --------------------------------------------------------------------------- models and data


def build_model(spec: str, num_classes: int) -> tuple[nn.Module, str, int | None]:
    """Build ``spec`` (any form of :func:`~.models.resolve_model`) for ``num_classes`` classes.

    Returns the network, its canonical string and its native input resolution (None: the data's).
    """
    source = resolve_model(spec, field="model")
    return source.build(num_classes), source.spec, source.native_input().image_size


def describe_model(spec: str) -> tuple[str, int | None]:
    """Canonical string and native input resolution of ``spec``, without building it for training."""
    source = resolve_model(spec, field="model")
    return source.spec, source.native_input().image_size


def teacher_for_training(teacher: Teacher, info: DatasetInfo) -> nn.Module:
    """The teacher as distillation runs it: on the student's batches, resized to its own input size
    and renormalised to its own mean/std (synthetic images are only resized, as in the search)."""
    size = teacher.image_size(info.image_size)
    synthetic = info.name == "synthetic"
    if size == info.image_size and (synthetic or teacher.input.mean is None):
        network: nn.Module = teacher.network
        return network
    return TeacherInput(
        teacher=teacher.network,
        image_size=size,
        mean=None if synthetic else teacher.input.mean,
        std=None if synthetic else teacher.input.std,
        student_mean=info.mean,
        student_std=info.std,
    )


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (all devices) global RNGs."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


__all__ += ["describe_model", "seed_everything", "teacher_for_training"]


def make_datasets(
    info: DatasetInfo, data_dir: str | Path | None, val_dir: str | Path | None = None
) -> tuple[Dataset[Any], Dataset[Any], int]:
    """Training set (augmented), evaluation set (test split or ``val_dir``) and the class count."""
    import torchvision

    if info.name == "synthetic":
        if val_dir is not None:
            raise DiswotError("`val_dir` is for image folders; `dataset` synthetic has its own evaluation split")
        classes = info.num_classes or 100
        sizes = dict(num_classes=classes, image_size=info.image_size)
        return SyntheticImages(train=True, **sizes), SyntheticImages(train=False, **sizes), classes
    train_set = load_dataset(info.name, data_dir, train=True, transform=train_transform(info))
    if val_dir is not None:
        if not Path(val_dir).is_dir():
            raise DiswotError(f"`val_dir` {str(val_dir)!r} is not a folder of class folders")
        try:
            val_set: Dataset[Any] = torchvision.datasets.ImageFolder(
                str(val_dir), transform=eval_transform(info), loader=read_image
            )
        except (FileNotFoundError, RuntimeError) as exc:
            raise DiswotError(f"`val_dir` {str(val_dir)!r}: {str(exc).splitlines()[0]}") from None
    else:
        val_set = load_dataset(info.name, data_dir, train=False, transform=eval_transform(info))
        if info.name == "imagefolder" and getattr(val_set, "root", None) == getattr(train_set, "root", None):
            log.warning("%s has no val/ folder and no `val_dir` was given: evaluating on the training images", data_dir)
    train_classes = getattr(train_set, "classes", None)
    val_classes = getattr(val_set, "classes", None)
    if train_classes is not None and val_classes is not None and list(train_classes) != list(val_classes):
        raise DiswotError(
            f"the evaluation split has other classes than the training split ({len(val_classes)} vs "
            f"{len(train_classes)}); give `val_dir` the same class folders"
        )
    num_classes = info.num_classes or len(train_classes or [])
    if num_classes < 1:
        raise DiswotError(f"cannot tell the number of classes of {info.name} in {data_dir!r}")
    if num_classes == 1:
        raise DiswotError(
            f"{info.name} in {str(data_dir)!r} has one class folder: a classifier needs two or more "
            "(data/train/<class>/*.png, one folder per class)"
        )
    for dataset in (train_set, val_set):  # a file that is not an image is named before any training starts
        check_images(dataset)
    return train_set, val_set, num_classes


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """``auto``: bf16 on GPUs that support it, else fp16 (with a GradScaler); off on CPU."""
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if mode == "bf16":
        return torch.bfloat16
    if mode == "fp16":
        if device.type != "cuda":
            raise DiswotError("`amp` fp16 needs a CUDA device; use `amp` bf16 or off on the CPU")
        return torch.float16
    raise DiswotError(f"unknown `amp` {mode!r}; valid: auto, bf16, fp16, off")


_AMP_NAMES = {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}


class _Shard(Sampler[int]):
    """Indices ``rank, rank + world, ...``: an evaluation shard with no padding or duplicates."""

    def __init__(self, n: int, rank: int, world: int) -> None:
        self.indices = list(range(rank, n, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + rank) % (2**63)


# --------------------------------------------------------------------------- the loop


def _top_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Counts of correct top-1 and top-k predictions."""
    k = min(k, logits.shape[1])
    hit = logits.topk(k, dim=1).indices == labels[:, None]
    return hit[:, 0].sum(), hit.any(dim=1).sum()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader[Any],
    *,
    device: torch.device,
    env: DistEnv | None = None,
    amp: torch.dtype | None = None,
    channels_last: bool = False,
) -> dict[str, float]:
    """Top-1, top-5 and mean cross-entropy over ``loader`` (summed over ranks)."""
    env = env or DistEnv(device=device)
    model.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, top1, top5, n
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for images, labels in loader:
        images = images.to(device, non_blocking=True, memory_format=fmt)
        labels = labels.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            logits = model(images)
        logits = logits.float()
        t1, t5 = _top_correct(logits, labels, 5)
        sums += torch.stack(
            [
                F.cross_entropy(logits, labels, reduction="sum").double(),
                t1.double(),
                t5.double(),
                torch.tensor(float(len(labels)), dtype=torch.float64, device=device),
            ]
        )
    all_reduce_sum(env, sums)
    loss, top1, top5, n = sums.tolist()
    n = max(n, 1.0)
    return {"top1": top1 / n, "top5": top5 / n, "val_loss": loss / n}


__all__ += ["evaluate"]


def _to_device(module: nn.Module, device: torch.device, fmt: torch.memory_format) -> None:
    """``module.to(device, memory_format=fmt)``, in place."""
    # Module.to takes memory_format (torch.nn.Module.to's docs), but its typing overloads leave it out
    module.to(device, memory_format=fmt)  # type: ignore[call-overload]


@dataclass
class _Loop:
    """What one training run's epochs share: the model as run, the loss, the optimisation state and the data."""

    model: nn.Module
    net: nn.Module  # the model, wrapped for DDP when distributed
    teacher: nn.Module | None
    criterion: KDLoss | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    amp: torch.dtype | None
    fmt: torch.memory_format
    device: torch.device
    env: DistEnv


def train_model(
    model: nn.Module,
    *,
    config: TrainConfig,
    train_set: Dataset[Any],
    val_set: Dataset[Any],
    device: torch.device,
    out_dir: str | Path | None,
    teacher: nn.Module | None = None,
    resume: bool = False,
    env: DistEnv | None = None,
    reporter: Reporter | None = None,
    log_every: int = 10,
) -> TrainResult:
    """Train ``model`` (cross-entropy, or Eq. 1 KD when ``teacher`` is given) under ``config``.

    Checkpoints go to ``out_dir/checkpoint.pt`` after every epoch (rank 0 only, atomically) with
    ``out_dir/results.json``. With ``resume`` the run continues from that checkpoint; without it
    an existing checkpoint is refused rather than overwritten. ``config`` is left as given (its
    ``amp`` resolved in the recorded copy); the process's random states and ``cudnn.benchmark`` are
    restored afterwards.
    """
    env = env or DistEnv(device=device)
    amp = resolve_amp(config.amp, device)
    config = replace(config, amp=_AMP_NAMES[amp])  # the recorded copy; the caller's is not changed
    ckpt_path = Path(out_dir) / CHECKPOINT_NAME if out_dir is not None else None
    with preserved_rng(device), precision_flags(benchmark=True if device.type == "cuda" else None):
        loop = _make_loop(model, teacher, config, amp, device, env)
        start, history = _resume_point(ckpt_path, resume, loop, config)
        if start >= config.epochs:
            log.info("checkpoint is already at epoch %d of %d: nothing to train", start, config.epochs)
            return TrainResult(history, ckpt_path, start)
        _log_start(config, loop, start)
        _run_epochs(loop, config, (train_set, val_set), start, history, ckpt_path, reporter or LogReporter(), log_every)
    return TrainResult(history, ckpt_path, start)


def _make_loop(
    model: nn.Module,
    teacher: nn.Module | None,
    config: TrainConfig,
    amp: torch.dtype | None,
    device: torch.device,
    env: DistEnv,
) -> _Loop:
    """Model and teacher on the device, the KD loss, SGD, the lr schedule and the AMP scaler."""
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    _to_device(model, device, fmt)
    criterion: KDLoss | None = None
    if teacher is not None:
        _to_device(teacher, device, fmt)
        teacher.eval().requires_grad_(False)
        criterion = KDLoss(gamma=config.kd_gamma or 0.0, alpha=config.kd_alpha or 0.0, rho=config.kd_rho or 1.0)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        nesterov=config.nesterov,
    )
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(config.milestones), gamma=config.lr_decay
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    net: nn.Module = model
    if env.enabled:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return _Loop(model, net, teacher, criterion, optimizer, scheduler, scaler, amp, fmt, device, env)


def _resume_point(
    ckpt_path: Path | None, resume: bool, loop: _Loop, config: TrainConfig
) -> tuple[int, list[dict[str, Any]]]:
    """The epoch to start from and the history so far: a checkpoint's with ``resume``, else none."""
    if ckpt_path is not None and ckpt_path.exists():
        if not resume:
            raise DiswotError(
                f"{str(ckpt_path)!r} already holds a checkpoint; pass `resume` to continue it, or another `out`"
            )
        return _restore(ckpt_path, loop.model, loop.optimizer, loop.scheduler, loop.scaler, config, loop.env)
    if resume:
        log.warning("`resume`: no checkpoint in %s yet, starting from epoch 1", ckpt_path.parent if ckpt_path else None)
    return 0, []


def _log_start(config: TrainConfig, loop: _Loop, start: int) -> None:
    log.info(
        "training %s for epochs %d..%d on %s (%d process(es), AMP %s, channels_last %s)%s",
        config.model,
        start + 1,
        config.epochs,
        loop.device,
        loop.env.world_size,
        config.amp,
        config.channels_last,
        f", distilling from {config.teacher}" if loop.teacher is not None else "",
    )


def _run_epochs(
    loop: _Loop,
    config: TrainConfig,
    datasets: tuple[Dataset[Any], Dataset[Any]],
    start: int,
    history: list[dict[str, Any]],
    ckpt_path: Path | None,
    reporter: Reporter,
    log_every: int,
) -> None:
    """Epochs ``start + 1 .. config.epochs``: train, evaluate, checkpoint; each record appended to ``history``."""
    env, device = loop.env, loop.device
    train_set, val_set = datasets
    per_rank = config.batch_size // env.world_size
    sampler: DistributedSampler[Any] = DistributedSampler(
        train_set, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=config.seed
    )
    loader_gen = torch.Generator()
    pin = device.type == "cuda"
    train_loader = DataLoader(
        train_set,
        batch_size=per_rank,
        sampler=sampler,
        num_workers=config.workers,
        pin_memory=pin,
        generator=loader_gen,
    )
    val_loader = DataLoader(
        val_set,
        batch_size=per_rank,
        sampler=_Shard(len(val_set), env.rank, env.world_size),  # type: ignore[arg-type]
        num_workers=config.workers,
        pin_memory=pin,
    )
    for epoch in range(start, config.epochs):
        sampler.set_epoch(epoch)
        loader_gen.manual_seed(_epoch_seed(config.seed, epoch, env.rank))
        reporter.epoch_start(epoch + 1, config.epochs, len(train_loader))
        record = _epoch(loop, config, train_loader, val_loader, reporter, log_every, epoch)
        history.append(record)
        _checkpoint(loop, config, history, ckpt_path)
        reporter.epoch_end(record)
    barrier(env)


def _epoch(
    loop: _Loop,
    config: TrainConfig,
    train_loader: DataLoader[Any],
    val_loader: DataLoader[Any],
    reporter: Reporter,
    log_every: int,
    epoch: int,
) -> dict[str, Any]:
    """One epoch's training pass, lr step and evaluation: its record."""
    device = loop.device
    lr = loop.optimizer.param_groups[0]["lr"]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    train = _train_epoch(loop, train_loader, reporter, log_every, epoch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    train_seconds = time.perf_counter() - t0
    loop.scheduler.step()
    metrics = evaluate(
        loop.model, val_loader, device=device, env=loop.env, amp=loop.amp, channels_last=config.channels_last
    )
    return {
        "epoch": epoch + 1,
        **train,
        **metrics,
        "lr": lr,
        "seconds": time.perf_counter() - t0,
        "train_seconds": train_seconds,
        "samples_per_s": train["samples"] / max(train_seconds, 1e-9),
    }


def _checkpoint(loop: _Loop, config: TrainConfig, history: list[dict[str, Any]], ckpt_path: Path | None) -> None:
    """Every rank's RNG states gathered; rank 0 writes the checkpoint and ``results.json``."""
    states = all_gather_objects(loop.env, rng_state())  # every rank joins, rank 0 writes
    if not loop.env.is_main or ckpt_path is None:
        return
    payload = {
        "arch": config.model,
        "num_classes": config.num_classes,
        "epoch": history[-1]["epoch"],
        "model": {k: v.detach().cpu() for k, v in loop.model.state_dict().items()},
        "optimizer": loop.optimizer.state_dict(),
        "scheduler": loop.scheduler.state_dict(),
        "scaler": loop.scaler.state_dict(),
        "rng": states,
        "config": config.to_dict(),
        "history": to_jsonable(history),
    }
    save_checkpoint(ckpt_path, payload)
    _write_results(ckpt_path.parent / RESULTS_NAME, config, history)


def _train_epoch(
    loop: _Loop, loader: DataLoader[Any], reporter: Reporter, log_every: int, epoch: int
) -> dict[str, float]:
    """One pass over ``loader``; returns the mean loss (and its KD parts) and training accuracy."""
    loop.net.train()
    # loss, ce, kl, correct, samples: summed on the device, read every ``log_every`` batches
    sums = torch.zeros(5, dtype=torch.float64, device=loop.device)
    for i, (images, labels) in enumerate(loader):
        sums += _step(loop, images.to(loop.device, non_blocking=True, memory_format=loop.fmt), labels)
        if (i + 1) % log_every == 0 or i + 1 == len(loader):
            loss_sum, _, _, hits, seen = sums.tolist()
            if not math.isfinite(loss_sum):
                raise DiswotError(
                    f"the training loss is not finite at epoch {epoch + 1}, batch {i + 1}; "
                    "lower `lr`, check the data, or try `amp` off"
                )
            reporter.batch(i + 1, loss_sum / seen, hits / seen)
    all_reduce_sum(loop.env, sums)
    loss_sum, ce_sum, kl_sum, hits, seen = sums.tolist()
    seen = max(seen, 1.0)
    out = {"loss": loss_sum / seen, "train_acc": hits / seen, "samples": int(seen)}
    if loop.criterion is not None:
        out.update(ce=ce_sum / seen, kl=kl_sum / seen)
    return out


def _step(loop: _Loop, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """One optimisation step; the batch's summed loss, CE, KL, correct count and size."""
    device, amp = loop.device, loop.amp
    labels = labels.to(device, non_blocking=True)
    with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
        logits = loop.net(images)
        if loop.teacher is not None:
            with torch.no_grad():
                teacher_logits = loop.teacher(images)
    if loop.criterion is not None:
        loss, ce, kl = loop.criterion(logits, teacher_logits, labels)
    else:
        loss = ce = F.cross_entropy(logits.float(), labels)
        kl = torch.zeros((), device=device)
    loop.optimizer.zero_grad(set_to_none=True)
    loop.scaler.scale(loss).backward()
    loop.scaler.step(loop.optimizer)
    loop.scaler.update()
    n = labels.shape[0]
    correct = (logits.detach().argmax(dim=1) == labels).sum()
    return torch.stack(
        [
            loss.detach().double() * n,
            ce.detach().double() * n,
            kl.detach().double() * n,
            correct.double(),
            torch.tensor(float(n), dtype=torch.float64, device=device),
        ]
    )


def _restore(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    config: TrainConfig,
    env: DistEnv,
) -> tuple[int, list[dict[str, Any]]]:
    """Load a checkpoint for ``--resume``: check it belongs to this run, restore every state."""
    ckpt = load_checkpoint(path)
    if ckpt["arch"] != config.model:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is for {ckpt['arch']}, not {config.model}; use another `out` or drop `resume`"
        )
    check_config(ckpt["config"], config.to_dict(), mutable=RESUME_MUTABLE, path=path)
    load_model_state(model, ckpt["model"], what=config.model, path=path)
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(ckpt["scaler"])
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r}: cannot restore the optimizer state ({exc})") from None
    states: Sequence[Any] = ckpt.get("rng") or []
    if len(states) == env.world_size:
        set_rng_state(states[env.rank])
    else:
        log.warning(
            "checkpoint has RNG states for %d process(es), this run has %d: reseeding, the run will not be bit-exact",
            len(states),
            env.world_size,
        )
        torch.manual_seed(_epoch_seed(config.seed, int(ckpt["epoch"]), env.rank))
    epoch = int(ckpt["epoch"])
    log.info("resuming %s from %s at epoch %d", config.model, path, epoch)
    return epoch, list(ckpt.get("history") or [])


def _write_results(path: Path, config: TrainConfig, history: list[dict[str, Any]]) -> None:
    import json

    final = history[-1] if history else {}
    text = json.dumps({"config": config.to_dict(), "final": final, "history": history}, indent=2, sort_keys=True)
    atomic_write_text(path, text + "\n")


def read_results(out_dir: str | Path) -> dict[str, Any]:
    """The ``results.json`` of a run folder."""
    import json

    results: dict[str, Any] = json.loads((Path(out_dir) / RESULTS_NAME).read_text())
    return results


__all__ += ["RESUME_MUTABLE", "read_results"]
