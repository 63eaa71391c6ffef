"""What ``train`` and ``distill`` share: their options, the resolved run, and the rich progress display."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .._choices import CHECKPOINT_NAME, DATASETS, RESULTS_NAME
from ._options import Bounded, add_progress_option
from ..presets import PRESETS
from ..recipe import check_out_dir, resolve_run
from ..progress import LOG_EVERY_SECONDS
from ._console import err_console

if TYPE_CHECKING:  # training (torch) is imported when the command runs, not when options are parsed
    from ..distributed import DistEnv
    from ..training import TrainResult

__all__ = [
    "RichReporter",
    "add_training_options",
    "check_out_dir",
    "lr_text",
    "reporter_for",
    "resolve_run",
    "summary_line",
]

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
    add_progress_option(x)


class RichReporter:
    """A rich progress bar (epoch, batch, loss, accuracy) and one printed line per epoch; in a log, or
    with ``bar=False`` (``--no-progress``), a line every 30 s instead of the bar."""

    def __init__(self, console: Console, title: str, *, bar: bool = True) -> None:
        self.console, self.title = console, title
        self.lines = not (bar and console.is_terminal)
        self.progress = Progress(
            TextColumn(f"[bold blue]{title}[/bold blue] epoch {{task.fields[epoch]}}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]} acc {task.fields[acc]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not bar,
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
        if self.lines and time.monotonic() - self.last_line >= LOG_EVERY_SECONDS:
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


def reporter_for(env: DistEnv, title: str, *, bar: bool = True) -> RichReporter | _Silent:
    """Rank 0 draws the progress (``bar=False``: lines); the other ranks stay quiet."""
    return RichReporter(err_console, title, bar=bar) if env.is_main else _Silent()  # progress: stderr


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
