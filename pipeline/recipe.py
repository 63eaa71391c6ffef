"""The resolved run of a training or a distillation: device, process group, data and recipe.

The recipe is DisWOT's (supplementary B.1, B.3: :mod:`.presets`), each value overridden where the
options give one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DiswotError
from .presets import Preset, preset_for

if TYPE_CHECKING:  # training (torch) is imported when a run is resolved
    from .distributed import DistEnv
    from .training import TrainConfig

__all__ = ["check_out_dir", "resolve_run"]


def check_out_dir(out: str | Path) -> None:
    """Refuse an ``out`` folder that cannot be written, before any data is read or trained on; a
    folder not there yet is made by the first checkpoint, so a refused run leaves none behind."""
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
            f"`out` {str(out)!r} cannot be written ({exc.strerror or exc}); choose a folder you can write to"
        ) from None


def _milestones(args: Any, preset: Preset, epochs: int) -> list[int]:
    """The epochs where the learning rate decays: ``milestones``, every ``lr_step``, or the preset's."""
    if args.milestones is not None and args.lr_step is not None:
        raise DiswotError("give either `milestones` or `lr_step`, not both")
    if args.milestones is not None:
        return list(args.milestones)
    if args.lr_step is not None:
        if args.lr_step < 1:
            raise DiswotError(f"`lr_step` must be >= 1, got {args.lr_step}")
        return list(range(args.lr_step, epochs, args.lr_step))
    return preset.milestones_for(epochs)


def _data_info(args: Any, model: str, image_size_hint: int | None, dataset: str, synthetic_classes: int | None) -> Any:
    """The dataset's :class:`~.data.DatasetInfo` at the run's image size."""
    from .data import dataset_info
    from .training import describe_model

    image_size = args.image_size
    if image_size is None and dataset in ("imagefolder", "synthetic"):
        image_size = image_size_hint or describe_model(model)[1]
    if image_size is not None and image_size < 8:
        raise DiswotError(f"`image_size` must be at least 8, got {image_size}")
    info = dataset_info(dataset, image_size=image_size, mean=args.mean, std=args.std)
    return replace(info, num_classes=synthetic_classes or 100) if dataset == "synthetic" else info


def _train_config(args: Any, preset: Preset, env: DistEnv, **resolved: Any) -> TrainConfig:
    """The :class:`~.training.TrainConfig`: each recipe value given in ``args``, else the preset's."""
    import torch

    from .training import TrainConfig, resolve_amp

    def given(name: str) -> Any:
        value = getattr(args, name, None)
        return value if value is not None else getattr(preset, name)

    teacher = resolved["teacher"]
    amp = resolve_amp(args.amp, env.device)
    return TrainConfig(
        **resolved,
        preset=preset.name,
        batch_size=given("batch_size"),
        lr=given("lr"),
        momentum=given("momentum"),
        weight_decay=given("weight_decay"),
        lr_decay=given("lr_decay"),
        nesterov=bool(args.nesterov),
        seed=args.seed,
        workers=args.workers,
        amp={None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp],
        channels_last=args.channels_last == "on" or (args.channels_last == "auto" and env.device.type == "cuda"),
        world_size=env.world_size,
        device=str(env.device),
        data_dir=str(Path(args.data_dir).resolve()) if args.data_dir else None,
        val_dir=str(Path(args.val_dir).resolve()) if args.val_dir else None,
        kd_gamma=given("kd_gamma") if teacher else None,
        kd_alpha=given("kd_alpha") if teacher else None,
        kd_rho=given("kd_rho") if teacher else None,
    )


def resolve_run(
    args: Any,
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

    ``args`` holds the options of ``train`` and ``distill`` as attributes (an ``argparse.Namespace``
    or a :class:`~.distill.DistillOptions`): data, recipe (``None``: the preset's) and run.
    ``teacher`` set means distillation: the KD weights come from the options or the preset.
    ``synthetic_classes``: the class count of the ``synthetic`` dataset (default 100, as CIFAR-100).
    """
    from .distributed import init_distributed, shutdown
    from .scoring import resolve_device
    from .training import make_datasets

    if args.log_every < 1:
        raise DiswotError(f"`log_every` must be >= 1, got {args.log_every}")
    check_out_dir(args.out)
    dataset = args.dataset or dataset_default
    info = _data_info(args, model, image_size_hint, dataset, synthetic_classes)
    preset = preset_for(args.preset, info.image_size)
    env = init_distributed(resolve_device(args.device))
    try:
        train_set, val_set, num_classes = make_datasets(info, args.data_dir, args.val_dir)
        epochs = args.epochs if args.epochs is not None else preset.epochs
        config = _train_config(
            args,
            preset,
            env,
            model=model,
            num_classes=num_classes,
            dataset=dataset,
            image_size=info.image_size,
            epochs=epochs,
            milestones=_milestones(args, preset, epochs),
            teacher=teacher,
            teacher_weights=teacher_weights,
            extra=dict(extra or {}),
        )
    except BaseException:
        shutdown(env)
        raise
    return env, preset, config, train_set, val_set, num_classes
