"""Distil a searched student from the teacher and write the result to its trial.

Step 3 of DisWOT (supplementary B.2): vanilla KD (Eq. 1) of a trial's student. The space, teacher
and class count come from the study's record (:class:`~.config.StudyRecord`); at the end the trial
gets ``distill_top1``, ``distill_top5``, ``distill_epochs``, ``distill_teacher`` and the final
checkpoint as an Optuna artifact (shown by optuna-dashboard). ``diswot distill`` and
:meth:`~.handle.Search.distill` run it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Hashable

import optuna

from diswot.storage import default_artifact_dir, finished_trial_writes, mask_url, masked_logs, open_storage, record
from diswot.storage import set_trial_user_attrs

from .config import StudyRecord
from .errors import DiswotError

if TYPE_CHECKING:  # training (torch) is imported when a distillation runs
    from torch import nn

    from diswot.spaces import Space

    from .distributed import DistEnv
    from .presets import Preset
    from .training import Reporter, TrainConfig, TrainResult

__all__ = ["DistillOptions", "DistillPlan", "DistillResult", "distill", "write_trial_results"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class DistillOptions:
    """How to distil: the run folder, data, recipe (``None``: the preset's, supplementary B.1/B.3),
    run settings, and overrides of what the study recorded (teacher, its weights, space)."""

    out: str
    dataset: str | None = None
    data_dir: str | None = None
    val_dir: str | None = None
    image_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    preset: str = "auto"
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    nesterov: bool = False
    milestones: tuple[int, ...] | None = None
    lr_step: int | None = None
    lr_decay: float | None = None
    kd_gamma: float | None = None
    kd_alpha: float | None = None
    kd_rho: float | None = None
    resume: bool = False
    seed: int = 0
    workers: int = 0
    device: str = "auto"
    amp: str = "auto"
    channels_last: str = "auto"
    log_every: int = 10
    teacher: str | None = None
    teacher_weights: str | None = None
    teacher_features: str | None = None
    teacher_classifier: str | None = None
    teacher_image_size: int | None = None
    space: str | None = None
    #: where the checkpoint artifact goes (default: next to the storage)
    artifact_dir: str | None = None


@dataclass
class DistillPlan:
    """A distillation ready to train: the trial, the student, the teacher and the resolved run."""

    trial: optuna.trial.FrozenTrial
    model: str
    teacher_name: str
    weights: str
    student: nn.Module
    teacher: nn.Module
    env: DistEnv
    preset: Preset
    config: TrainConfig
    train_set: Any
    val_set: Any
    num_classes: int


@dataclass(frozen=True)
class DistillResult:
    """A finished distillation: the trial, what training gave, and the checkpoint artifact."""

    trial: int
    model: str
    result: TrainResult
    artifact: str | None
    artifact_dir: Path
    #: the class count of the data it was distilled on
    num_classes: int = 0


def teacher_weights_path(given: str | None, recorded: str | None) -> str:
    """The teacher's checkpoint: the one given, else the study's; a distillation needs one."""
    from .checkpoint import weights_path

    value = given or recorded
    if value is None:
        raise DiswotError(
            "distillation needs a trained teacher: pass `teacher_weights` PATH "
            "(make one with: diswot train, `model` <teacher>, `out` DIR)"
        )
    if given is None:  # say where the path came from: the study, not an option the user passed
        return str(weights_path(value, option="the study's recorded teacher_weights (pass `teacher_weights` PATH)"))
    return str(weights_path(value))


def check_fingerprint(fingerprint: str, expected: str | None, name: str) -> None:
    """Refuse a teacher whose parameters differ from the one the study scored against (when recorded)."""
    if expected is not None and expected != fingerprint:
        raise DiswotError(
            f"teacher {name} is not the network the study was searched with (fingerprint {fingerprint}, study "
            f"{expected}); pass the study's `teacher` and `teacher_features`/`teacher_classifier`"
        )


def trial_student(trial: optuna.trial.FrozenTrial, space_name: str) -> tuple[Space, Hashable]:
    """The space and arch of ``trial``'s student, checked against its recorded arch string."""
    from diswot.spaces import get_space

    space = get_space(space_name)
    arch = space.from_params(trial.params)
    recorded_arch = trial.user_attrs.get(record.ARCH)
    if recorded_arch is not None and recorded_arch != space.encode(arch):
        raise DiswotError(
            f"trial {trial.number} records arch {recorded_arch!r} but its params give {space.encode(arch)!r} in "
            f"space {space.name}; pass the study's `space`"
        )
    return space, arch


def _recorded(study: optuna.Study, options: DistillOptions) -> tuple[StudyRecord | None, str, str]:
    """The study's record, the space and the teacher to use (the options' overrides first)."""
    recorded = StudyRecord.read(study.user_attrs.get(record.CONFIG))
    space = options.space or (recorded.config.space if recorded else None)
    teacher = options.teacher or (recorded.config.teacher if recorded else None)
    if not space or not teacher:
        raise DiswotError(
            f"study {study.study_name!r} records no space/teacher ({record.CONFIG}); pass `space` and `teacher`"
        )
    return recorded, space, teacher


def prepare(study: optuna.Study, trial: optuna.trial.FrozenTrial, options: DistillOptions, storage: str) -> DistillPlan:
    """Resolve the run (device, data, recipe), the teacher (its fingerprint checked) and the student."""
    from .models import create_model
    from .recipe import resolve_run

    recorded, space_name, teacher_name = _recorded(study, options)
    space, arch = trial_student(trial, space_name)
    model = f"{space.name}:{space.encode(arch)}"
    config = recorded.config if recorded else None
    weights = teacher_weights_path(options.teacher_weights, config.teacher_weights if config else None)
    env, preset, train_config, train_set, val_set, num_classes = resolve_run(
        options,
        model=model,
        image_size_hint=(config.image_size if config else None) or space.image_size,
        dataset_default=config.dataset if config else "cifar100",
        teacher=teacher_name,
        teacher_weights=str(Path(weights).resolve()),
        extra={"study": study.study_name, "trial": trial.number, "storage": mask_url(storage)},
        synthetic_classes=config.num_classes if config else None,
    )
    try:
        teacher = _teacher(options, recorded, teacher_name, weights, train_config, num_classes)
        student = create_model(model, num_classes=num_classes)  # from the generator the teacher seeded
    except BaseException:
        from .distributed import shutdown

        shutdown(env)
        raise
    return DistillPlan(
        trial,
        model,
        teacher_name,
        weights,
        student,
        teacher,
        env,
        preset,
        train_config,
        train_set,
        val_set,
        num_classes,
    )


def _teacher(
    options: DistillOptions,
    recorded: StudyRecord | None,
    name: str,
    weights: str,
    config: TrainConfig,
    num_classes: int,
) -> nn.Module:
    """The trained teacher for the student's batches, checked against the study's classes and fingerprint."""
    from .data import dataset_info
    from .teachers import load_teacher
    from .training import seed_everything, teacher_for_training

    study = recorded.config if recorded else None
    if study is not None and study.num_classes is not None and study.num_classes != num_classes:
        raise DiswotError(
            f"the study scored students for {study.num_classes} classes but {config.dataset} in "
            f"{options.data_dir or './data'} has {num_classes}; use the study's dataset"
        )
    seed_everything(config.seed)
    built = load_teacher(
        name,
        num_classes,
        weights=weights,
        features=options.teacher_features or (study.teacher_features if study else None),
        classifier=options.teacher_classifier or (study.teacher_classifier if study else None),
        image_size=options.teacher_image_size or (study.teacher_image_size if study else None),
        probe_size=config.image_size,
        distill=True,
        seed=config.seed,
    )
    check_fingerprint(built.fingerprint, recorded.teacher_fingerprint if recorded else None, name)
    info = dataset_info(config.dataset, image_size=config.image_size, mean=options.mean, std=options.std)
    return teacher_for_training(built, info)


def write_trial_results(
    storage_url: str,
    trial: optuna.trial.FrozenTrial,
    attrs: dict[str, Any],
    *,
    checkpoint: Path | None,
    artifact_dir: Path,
) -> str | None:
    """Set ``attrs`` on the (finished) trial and upload ``checkpoint`` as its artifact; returns the artifact id."""
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    storage = open_storage(storage_url, must_exist=True)
    artifact_id = None
    with finished_trial_writes(storage):
        set_trial_user_attrs(storage, trial, attrs)
        if checkpoint is not None:
            artifact_dir.mkdir(parents=True, exist_ok=True)
            artifact_id = upload_artifact(
                artifact_store=FileSystemArtifactStore(str(artifact_dir)),
                file_path=str(checkpoint),
                study_or_trial=trial,
                storage=storage,
                mimetype="application/octet-stream",  # mimetypes guesses .pt as a SNES page table
            )
            set_trial_user_attrs(storage, trial, {record.DISTILL_ARTIFACT: artifact_id})
    return artifact_id


def _record(plan: DistillPlan, result: TrainResult, storage: str, options: DistillOptions) -> DistillResult:
    """Write the final figures and the checkpoint artifact to the trial."""
    final = result.final
    attrs = record.distill_result(
        top1=final["top1"],
        top5=final["top5"],
        epochs=final["epoch"],
        teacher=plan.teacher_name,
        teacher_weights=plan.config.teacher_weights,
        loss=[round(r["loss"], 6) for r in result.history],
    )
    artifact_dir = Path(options.artifact_dir) if options.artifact_dir else default_artifact_dir(storage)
    artifact = write_trial_results(storage, plan.trial, attrs, checkpoint=result.checkpoint, artifact_dir=artifact_dir)
    return DistillResult(plan.trial.number, plan.model, result, artifact, artifact_dir, plan.num_classes)


def distill(
    study: optuna.Study,
    trial: optuna.trial.FrozenTrial,
    options: DistillOptions,
    *,
    storage: str,
    reporter: Callable[[DistEnv], ContextManager[Reporter]] | None = None,
    on_start: Callable[[DistillPlan], None] | None = None,
) -> DistillResult | None:
    """Distil ``trial``'s student of ``study`` (in ``storage``) and record the result on the trial.

    ``on_start(plan)`` runs once everything is resolved, before the first epoch; ``reporter(env)``
    gives the context manager that shows the epochs (default: log lines). ``None`` on the ranks of
    a multi-process run other than 0. The run is seeded with ``options.seed``; the caller's random
    states and log-record factory are restored afterwards (storage passwords masked meanwhile).
    """
    from ._scoped import preserved_rng
    from .distributed import shutdown
    from .training import LogReporter

    with masked_logs(), preserved_rng():
        plan = prepare(study, trial, options, storage)
        try:
            if on_start is not None and plan.env.is_main:
                on_start(plan)
            shown = reporter(plan.env) if reporter is not None else contextlib.nullcontext(LogReporter())
            with shown as epochs:
                result = _train(plan, options, epochs)
            if not (plan.env.is_main and result.history):
                return None
            return _record(plan, result, storage, options)
        finally:
            shutdown(plan.env)


def _train(plan: DistillPlan, options: DistillOptions, reporter: Reporter) -> TrainResult:
    from .training import train_model

    return train_model(
        plan.student,
        config=plan.config,
        train_set=plan.train_set,
        val_set=plan.val_set,
        device=plan.env.device,
        out_dir=options.out,
        teacher=plan.teacher,
        resume=options.resume,
        env=plan.env,
        reporter=reporter,
        log_every=options.log_every,
    )
