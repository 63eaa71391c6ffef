"""``diswot distill``: distil a searched student from the teacher and write the result to the study.

Step 3 of DisWOT (supplementary B.2): vanilla KD (Eq. 1) of the best trial's student (or
``--trial N``). The space, teacher and class count come from the study's recorded configuration;
at the end the trial gets ``distill_top1``, ``distill_top5``, ``distill_epochs``,
``distill_teacher`` and the final checkpoint as an Optuna artifact (shown by optuna-dashboard).
"""

from __future__ import annotations

import argparse
import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import optuna

from diswot.storage import (
    default_artifact_dir,
    finished_trial_writes,
    mask_url,
    open_storage,
    record,
    set_trial_user_attrs,
)

from ._options import Bounded, add_artifact_dir_option, add_storage_options, add_teacher_options
from ..errors import DiswotError
from ..pick import recommended_trial, top_trials
from ._console import console, err_console
from ._hints import distill_hint
from ._study import load_existing_study
from ._training import add_training_options, reporter_for, resolve_run, summary_line

if TYPE_CHECKING:  # training (torch) is imported when the command runs, not when options are parsed
    from ..training import TrainResult

__all__ = ["DISTILL_ATTRS", "add_parser", "default_artifact_dir", "run", "write_trial_results"]

log = logging.getLogger(__name__)

#: trial user attributes written at the end of a distillation
DISTILL_ATTRS = record.DISTILL_FIGURES


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``distill`` sub-command."""
    p = sub.add_parser(
        "distill",
        help="distil the best (or a chosen) trial's student from the teacher with KD; resumable",
        description="Knowledge distillation (DisWOT Eq. 1) of a searched student. Space, teacher and classes "
        "come from the study; results go back to the trial as user attributes and an artifact.",
    )
    add_storage_options(p, study_required=True)
    p.add_argument(
        "--trial",
        type=Bounded(at_least=0),
        metavar="N",
        help="trial number to distil (default: the trial the search recommends)",
    )
    add_teacher_options(p, from_study=True)
    p.add_argument("--space", help="search space (default: the study's)")
    add_artifact_dir_option(p, what="where the distilled checkpoint goes")
    add_training_options(p, kd=True)
    p.set_defaults(run=run)


def _trial_to_distill(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if number is None:
        if not complete:
            raise DiswotError(f"study {study.study_name!r} has no completed trial; run diswot search first")
        if len(study.directions) == 1:
            return recommended_trial(study) or complete[0]  # the best pick score, else the best score
        return top_trials(study, 1)[0]  # the best score
    trials = study.get_trials(deepcopy=False)
    match = [t for t in trials if t.number == number]
    if not match:
        raise DiswotError(f"study {study.study_name!r} has no trial {number} (trials 0..{len(trials) - 1})")
    trial = match[0]
    if trial.state != optuna.trial.TrialState.COMPLETE:
        raise DiswotError(f"trial {number} is {trial.state.name}, not COMPLETE; distil a completed trial")
    return trial


def _teacher_weights_path(given: str | None, recorded: str | None, hint: Callable[[], str]) -> str:
    from ..checkpoint import weights_path

    value = given or recorded
    if value is None:
        raise DiswotError(f"distillation needs a trained teacher: pass --teacher-weights PATH, e.g. {hint()}")
    if given is None:  # say where the path came from: the study, not a flag the user passed
        return str(weights_path(value, option="the study's recorded teacher_weights (pass --teacher-weights PATH)"))
    return str(weights_path(value))


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


def _check_fingerprint(fingerprint: str, recorded: dict[str, Any], name: str) -> None:
    """Refuse a teacher whose parameters differ from the one the study scored against (when recorded)."""
    expected = recorded.get("teacher_fingerprint")
    if expected is not None and expected != fingerprint:
        raise DiswotError(
            f"teacher {name} is not the network the study was searched with (fingerprint {fingerprint}, study "
            f"{expected}); pass the study's --teacher and --teacher-features/--teacher-classifier"
        )


def run(args: argparse.Namespace) -> int:
    """Distil the chosen trial's student and record the result on the trial."""
    from diswot.spaces import get_space

    from ..data import dataset_info
    from ..models import create_model
    from ..teachers import load_teacher
    from ..training import seed_everything, teacher_for_training, train_model

    study = load_existing_study(args.storage, args.study)
    recorded: dict[str, Any] = dict(study.user_attrs.get(record.CONFIG) or {})
    trial = _trial_to_distill(study, args.trial)
    space_name = args.space or recorded.get("space")
    teacher_name = args.teacher or recorded.get("teacher")
    if not space_name or not teacher_name:
        raise DiswotError(
            f"study {args.study!r} records no space/teacher ({record.CONFIG}); pass --space and --teacher"
        )
    space = get_space(space_name)
    arch = space.from_params(trial.params)
    model_name = f"{space.name}:{space.encode(arch)}"
    recorded_arch = trial.user_attrs.get(record.ARCH)
    if recorded_arch is not None and recorded_arch != space.encode(arch):
        raise DiswotError(
            f"trial {trial.number} records arch {recorded_arch!r} but its params give {space.encode(arch)!r} in "
            f"space {space.name}; pass the study's --space"
        )
    hint = functools.partial(distill_hint, study, args.storage, trial.number)
    weights = _teacher_weights_path(args.teacher_weights, recorded.get("teacher_weights"), hint)
    recorded_dataset = recorded.get("dataset")
    dataset_default = recorded_dataset or "cifar100"
    image_hint = recorded.get("image_size") or space.image_size
    env, preset, config, train_set, val_set, num_classes = resolve_run(
        args,
        model=model_name,
        image_size_hint=image_hint,
        dataset_default=dataset_default,
        teacher=teacher_name,
        teacher_weights=str(Path(weights).resolve()),
        extra={"study": args.study, "trial": trial.number, "storage": mask_url(args.storage)},
        synthetic_classes=recorded.get("num_classes"),
    )
    try:
        study_classes = recorded.get("num_classes")
        if study_classes is not None and study_classes != num_classes:
            raise DiswotError(
                f"the study scored students for {study_classes} classes but {config.dataset} in "
                f"{args.data_dir or './data'} has {num_classes}; use the study's dataset"
            )
        seed_everything(config.seed)
        built = load_teacher(
            teacher_name,
            num_classes,
            weights=weights,
            features=args.teacher_features or recorded.get("teacher_features"),
            classifier=args.teacher_classifier or recorded.get("teacher_classifier"),
            image_size=args.teacher_image_size or recorded.get("teacher_image_size"),
            probe_size=config.image_size,
            distill=True,
            seed=config.seed,
        )
        _check_fingerprint(built.fingerprint, recorded, teacher_name)
        info = dataset_info(config.dataset, image_size=config.image_size, mean=args.mean, std=args.std)
        teacher = teacher_for_training(built, info)
        student = create_model(model_name, num_classes=num_classes)  # from the generator seeded above
        if env.is_main:
            err_console.print(
                f"[bold]distill[/bold] trial {trial.number} of {args.study}: {model_name} "
                f"(score {trial.values[0]:.6g}) from {teacher_name} ({weights}) on {config.dataset} "
                f"({num_classes} classes, {len(train_set)} train / {len(val_set)} eval images), preset {preset.name}: "
                f"{config.epochs} epochs, KD gamma {config.kd_gamma} alpha {config.kd_alpha} rho {config.kd_rho}, "
                f"batch {config.batch_size}, lr {config.lr}, {config.device}, AMP {config.amp}",
                highlight=False,
            )
        with reporter_for(env, "distill") as reporter:
            result: TrainResult = train_model(
                student,
                config=config,
                train_set=train_set,
                val_set=val_set,
                device=env.device,
                out_dir=args.out,
                teacher=teacher,
                resume=args.resume,
                env=env,
                reporter=reporter,
                log_every=args.log_every,
            )
        if env.is_main and result.history:
            final = result.final
            attrs = record.distill_result(
                top1=final["top1"],
                top5=final["top5"],
                epochs=final["epoch"],
                teacher=teacher_name,
                teacher_weights=config.teacher_weights,
                loss=[round(r["loss"], 6) for r in result.history],
            )
            artifact_dir = Path(args.artifact_dir) if args.artifact_dir else default_artifact_dir(args.storage)
            artifact = write_trial_results(
                args.storage, trial, attrs, checkpoint=result.checkpoint, artifact_dir=artifact_dir
            )
            console.print(summary_line(result, args.out, num_classes), highlight=False)
            console.print(
                f"trial {trial.number}: distill_top1 {final['top1']:.4f} recorded; checkpoint artifact {artifact} in {artifact_dir}",
                highlight=False,
            )
    finally:
        from ..distributed import shutdown

        shutdown(env)
    return 0
