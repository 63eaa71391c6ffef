"""What ``train`` and ``distill`` share: their options, the resolved run, and the rich progress display."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .._choices import CHECKPOINT_NAME, DATASETS, RESULTS_NAME
from ._options import Bounded
from ..errors import DiswotError
from ..presets import PRESETS, Preset, preset_for
from ..progress import LOG_EVERY_SECONDS
from ._console import err_console

if TYPE_CHECKING:  # training (torch) is imported when the command runs, not when options are parsed
    from ..distributed import DistEnv
    from ..training import TrainConfig, TrainResult

__all__ = ["RichReporter", "add_training_options", "lr_text", "reporter_for", "resolve_run", "summary_line"]

TRAIN_DATASETS = DATASETS  # synthetic: seeded random images, for trying things out offline


def _recipe(what: str, field: str) -> str:
    """``what`` and each preset's value of ``field``: the help of a recipe option, from :data:`PRESETS`."""
    values = {getattr(preset, field) for preset in PRESETS.values()}
    if len(values) == 1:
        return f"{what} ({next(iter(values)):g})"
    return f"{what} ({', '.join(f'{name} {getattr(preset, field):g}' for name, preset in PRESETS.items())})"


def add_training_options(p: argparse.ArgumentParser, *, kd: bool = False) -> None:
    """Data, recipe, run and output options of ``train`` and ``distill``."""
    d = p.add_argument_group("data")
    shown = "default: the study's" if kd else "default cifar100"  # distill trains on the study's data
    d.add_argument("--dataset", default=None, choices=TRAIN_DATASETS, help=f"training data ({shown})")
    d.add_argument("--data-dir", metavar="DIR", help="where the dataset lives (default ./data)")
    d.add_argument("--val-dir", metavar="DIR", help="evaluate on this ImageFolder instead of the test/val split")
    d.add_argument(
        "--image-size",
        type=Bounded(at_least=8),
        help="input resolution (default: the dataset's; ImageFolder: the model's)",
    )
    d.add_argument("--mean", type=Bounded(float), nargs=3, metavar=("R", "G", "B"), help="normalisation mean")
    d.add_argument("--std", type=Bounded(float, above=0), nargs=3, metavar=("R", "G", "B"), help="normalisation std")
    r = p.add_argument_group("recipe (defaults from --preset)")
    r.add_argument(
        "--preset", default="auto", choices=("auto", *PRESETS), help="auto: cifar for <= 64 px, else imagenet"
    )
    r.add_argument("--epochs", type=Bounded(at_least=1), help=_recipe("epochs", "epochs"))
    r.add_argument(
        "--batch-size",
        type=Bounded(at_least=1),
        help=_recipe("global batch size, split over torchrun processes", "batch_size"),
    )
    r.add_argument("--lr", type=Bounded(float, above=0), help=_recipe("initial learning rate", "lr"))
    r.add_argument("--momentum", type=Bounded(float, at_least=0), help=_recipe("SGD momentum", "momentum"))
    r.add_argument("--weight-decay", type=Bounded(float, at_least=0), help=_recipe("weight decay", "weight_decay"))
    r.add_argument("--nesterov", action="store_true", help="Nesterov momentum")
    milestones = ", ".join(f"{n} {' '.join(map(str, p.milestones))}" for n, p in PRESETS.items() if p.milestones)
    steps = ", ".join(f"{n} {p.lr_step}" for n, p in PRESETS.items() if p.lr_step)
    r.add_argument(
        "--milestones", type=Bounded(at_least=1), nargs="+", metavar="EPOCH", help=f"lr decay epochs ({milestones})"
    )
    r.add_argument(
        "--lr-step", type=Bounded(at_least=1), metavar="N", help=f"decay the lr every N epochs instead ({steps})"
    )
    r.add_argument("--lr-decay", type=Bounded(float, above=0), help=_recipe("lr factor at each milestone", "lr_decay"))
    if kd:
        k = p.add_argument_group("knowledge distillation (Eq. 1: gamma*CE + alpha*rho^2*KL)")
        k.add_argument(
            "--kd-gamma", type=Bounded(float, at_least=0), help=_recipe("weight of the label cross-entropy", "kd_gamma")
        )
        k.add_argument("--kd-alpha", type=Bounded(float, at_least=0), help=_recipe("weight of the KL term", "kd_alpha"))
        k.add_argument(
            "--kd-rho",
            "--temperature",
            dest="kd_rho",
            type=Bounded(float, above=0),
            help=_recipe("temperature rho", "kd_rho"),
        )
    x = p.add_argument_group("run")
    x.add_argument(
        "--out", required=True, metavar="DIR", help=f"run folder: {CHECKPOINT_NAME} (every epoch) and {RESULTS_NAME}"
    )
    x.add_argument("--resume", action="store_true", help=f"continue from DIR/{CHECKPOINT_NAME}")
    x.add_argument(
        "--seed", type=Bounded(at_least=0), default=0, help="seed of init, data order and augmentation (default 0)"
    )
    x.add_argument("--workers", type=Bounded(at_least=0), default=0, help="DataLoader worker processes (default 0)")
    x.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto; torchrun: cuda:LOCAL_RANK)")
    x.add_argument(
        "--amp",
        default="auto",
        choices=("auto", "bf16", "fp16", "off"),
        help="mixed precision (auto: bf16/fp16 on CUDA, off on CPU)",
    )
    x.add_argument(
        "--channels-last",
        default="auto",
        choices=("auto", "on", "off"),
        help="channels_last memory format (auto: on CUDA)",
    )
    x.add_argument(
        "--log-every",
        type=Bounded(at_least=1),
        default=10,
        metavar="N",
        help="update the progress every N batches (default 10)",
    )


def check_out_dir(out: str | Path) -> None:
    """Refuse an ``--out`` folder that cannot be written, before any data is read or trained on; a
    folder not there yet is made by the first checkpoint, so a refused command leaves none behind."""
    import os
    import tempfile

    folder = Path(out).expanduser().absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "not a directory")
        if existing != folder and not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".diswot-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DiswotError(
            f"--out {str(out)!r} cannot be written ({exc.strerror or exc}); choose a folder you can write to"
        ) from None


def resolve_run(
    args: argparse.Namespace,
    *,
    model: str,
    image_size_hint: int | None = None,
    dataset_default: str = "cifar100",
    teacher: str | None = None,
    teacher_weights: str | None = None,
    extra: dict[str, Any] | None = None,
    synthetic_classes: int | None = None,
) -> tuple[DistEnv, Preset, TrainConfig, Any, Any, int]:
    """Resolve device, process group, data and recipe: ``(env, preset, config, train_set, val_set, classes)``.

    ``teacher`` set means distillation: the KD weights come from the flags or the preset.
    ``synthetic_classes``: the class count of ``--dataset synthetic`` (default 100, as CIFAR-100).
    """
    import torch

    from ..data import dataset_info
    from ..distributed import init_distributed, shutdown
    from ..scoring import resolve_device
    from ..training import TrainConfig, describe_model, make_datasets, resolve_amp

    check_out_dir(args.out)
    dataset = args.dataset or dataset_default
    image_size = args.image_size
    if image_size is None and dataset in ("imagefolder", "synthetic"):
        image_size = image_size_hint or describe_model(model)[1]
    info = dataset_info(dataset, image_size=image_size, mean=args.mean, std=args.std)
    if dataset == "synthetic":
        info = replace(info, num_classes=synthetic_classes or 100)
    preset = preset_for(args.preset, info.image_size)
    device = resolve_device(args.device)
    env = init_distributed(device)
    try:
        train_set, val_set, num_classes = make_datasets(info, args.data_dir, args.val_dir)
        epochs = args.epochs if args.epochs is not None else preset.epochs
        if args.milestones is not None and args.lr_step is not None:
            raise DiswotError("give either --milestones or --lr-step, not both")
        if args.milestones is not None:
            milestones = list(args.milestones)
        elif args.lr_step is not None:
            milestones = list(range(args.lr_step, epochs, args.lr_step))
        else:
            milestones = preset.milestones_for(epochs)

        def given(name: str) -> Any:
            """The option ``name`` if given, else the preset's value."""
            value = getattr(args, name, None)
            return value if value is not None else getattr(preset, name)

        config = TrainConfig(
            model=model,
            num_classes=num_classes,
            dataset=dataset,
            image_size=info.image_size,
            preset=preset.name,
            epochs=epochs,
            batch_size=given("batch_size"),
            lr=given("lr"),
            momentum=given("momentum"),
            weight_decay=given("weight_decay"),
            milestones=milestones,
            lr_decay=given("lr_decay"),
            nesterov=bool(args.nesterov),
            seed=args.seed,
            workers=args.workers,
            amp={None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[resolve_amp(args.amp, env.device)],
            channels_last=args.channels_last == "on" or (args.channels_last == "auto" and env.device.type == "cuda"),
            world_size=env.world_size,
            device=str(env.device),
            data_dir=str(Path(args.data_dir).resolve()) if args.data_dir else None,
            val_dir=str(Path(args.val_dir).resolve()) if args.val_dir else None,
            teacher=teacher,
            teacher_weights=teacher_weights,
            kd_gamma=given("kd_gamma") if teacher else None,
            kd_alpha=given("kd_alpha") if teacher else None,
            kd_rho=given("kd_rho") if teacher else None,
            extra=dict(extra or {}),
        )
    except BaseException:
        shutdown(env)
        raise
    return env, preset, config, train_set, val_set, num_classes


class RichReporter:
    """A rich progress bar (epoch, batch, loss, accuracy) and one printed line per epoch."""

    def __init__(self, console: Console, title: str) -> None:
        self.console, self.title = console, title
        self.progress = Progress(
            TextColumn(f"[bold blue]{title}[/bold blue] epoch {{task.fields[epoch]}}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]} acc {task.fields[acc]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task: Any = None
        self.epochs = 0
        self.epoch = ""
        self.batches = 0
        self.last_line = time.monotonic()

    def __enter__(self) -> "RichReporter":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)  # type: ignore[arg-type]

    def epoch_start(self, epoch: int, epochs: int, batches: int) -> None:  # noqa: D102
        self.epochs = epochs
        label = f"{epoch}/{epochs}"
        self.epoch, self.batches = label, batches
        if self.task is None:
            self.task = self.progress.add_task("train", total=batches, epoch=label, loss="-", acc="-")
        else:
            self.progress.reset(self.task, total=batches, epoch=label, loss="-", acc="-")

    def batch(self, done: int, loss: float, acc: float) -> None:  # noqa: D102
        self.progress.update(self.task, completed=done, loss=f"{loss:.4f}", acc=f"{100 * acc:.1f}%")
        if not self.console.is_terminal and time.monotonic() - self.last_line >= LOG_EVERY_SECONDS:
            self.last_line = time.monotonic()  # in a log the bar shows nothing: a line every 30 s
            self.console.print(
                f"{self.title} epoch {self.epoch}: batch {done}/{self.batches}, loss {loss:.4f}, acc {100 * acc:.1f}%",
                highlight=False,
            )

    def epoch_end(self, record: dict[str, Any]) -> None:  # noqa: D102
        from ..training import format_record

        self.progress.console.print(format_record(record, self.epochs), highlight=False)


class _Silent:
    """Reporter for ranks other than 0."""

    def __enter__(self) -> "_Silent":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def epoch_start(self, epoch: int, epochs: int, batches: int) -> None:  # noqa: D102
        pass

    def batch(self, done: int, loss: float, acc: float) -> None:  # noqa: D102
        pass

    def epoch_end(self, record: dict[str, Any]) -> None:  # noqa: D102
        pass


def reporter_for(env: DistEnv, title: str) -> RichReporter | _Silent:
    """Rank 0 draws the progress; the other ranks stay quiet."""
    return RichReporter(err_console, title) if env.is_main else _Silent()  # progress: stderr


def summary_line(result: TrainResult, out: str | Path, classes: int) -> str:
    """The final line: metrics (top-5 only with more than 5 classes) and where the checkpoint is."""
    f = result.final
    if not f:
        return f"nothing trained; see {out}"
    top5 = f", top-5 {100 * f['top5']:.2f}%" if classes > 5 else ""
    return (
        f"done: epoch {f['epoch']}, top-1 {100 * f['top1']:.2f}%{top5}, "
        f"train loss {f['loss']:.4f}; checkpoint {Path(out) / CHECKPOINT_NAME}"
    )


def lr_text(lr: float, decay: float, milestones: Sequence[int]) -> str:
    """``lr 0.05 x0.1 at [150, 180, 210]``, or ``lr 0.1, no decay`` without milestones."""
    return f"lr {lr} x{decay} at {list(milestones)}" if milestones else f"lr {lr}, no decay"
