"""``diswot train``: train a network with cross-entropy (e.g. a teacher for the search)."""

from __future__ import annotations

import argparse

from ._console import console, err_console
from ._training import add_training_options, lr_text, reporter_for, resolve_run, summary_line

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``train`` sub-command."""
    p = sub.add_parser(
        "train",
        help="train a network with cross-entropy (e.g. a CIFAR teacher); resumable",
        description="Train a teacher (resnet20, timm:NAME, torchvision:NAME, ...) or a student (SPACE:ARCH, e.g. "
        "s0:ResNet[3,3,3]) with cross-entropy. Presets: the paper's CIFAR recipe, torchvision's ImageNet recipe; "
        "every value is a flag.",
    )
    p.add_argument(
        "--model",
        required=True,
        help="any model spec, as --teacher: a short name (resnet20, ...), SPACE:ARCH, torchvision:NAME, timm:NAME, "
        "package.module:factory or path/to/file.py:factory (random init; list: diswot teachers)",
    )
    add_training_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Train ``--model`` with cross-entropy and write checkpoints to ``--out``."""
    from ..distributed import shutdown
    from ..training import build_model, describe_model, seed_everything, train_model

    name, _ = describe_model(args.model)  # checks the name before any data is read
    env, preset, config, train_set, val_set, num_classes = resolve_run(args, model=name)
    try:
        seed_everything(config.seed)
        model, canonical, _ = build_model(name, num_classes)
        if env.is_main:
            err_console.print(
                f"[bold]train[/bold] {canonical} on {config.dataset} ({num_classes} classes, {config.image_size}px, "
                f"{len(train_set)} train / {len(val_set)} eval images), preset {preset.name}: {config.epochs} epochs, "
                f"batch {config.batch_size}, {lr_text(config.lr, config.lr_decay, config.milestones)}, "
                f"wd {config.weight_decay}, {config.device}, AMP {config.amp}",
                highlight=False,
            )
        with reporter_for(env, "train", bar=not args.no_progress) as reporter:
            result = train_model(
                model,
                config=config,
                train_set=train_set,
                val_set=val_set,
                device=env.device,
                out_dir=args.out,
                resume=args.resume,
                env=env,
                reporter=reporter,
                log_every=args.log_every,
            )
        if env.is_main:
            console.print(summary_line(result, args.out, num_classes), highlight=False)
    finally:
        shutdown(env)
    return 0
