"""``diswot distill``: distil a searched student from the teacher and write the result to the study.

Parse -> :meth:`Search.load(...).distill <diswot.pipeline.handle.Search.distill>` -> print: the
library (:mod:`diswot.pipeline.distill`) trains the trial's student with KD (DisWOT Eq. 1) and
records ``distill_top1``, ``distill_top5``, ``distill_epochs``, ``distill_teacher`` and the final
checkpoint (an Optuna artifact) on the trial.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Callable

import optuna

from diswot.storage import default_artifact_dir, record

from ._options import Bounded, add_artifact_dir_option, add_storage_options, add_teacher_options
from ..distill import DistillOptions, write_trial_results
from ..errors import DiswotError
from ..handle import Search
from ._console import console, err_console
from ._hints import distill_hint
from ._training import add_training_options, reporter_for, summary_line

if TYPE_CHECKING:
    from ..distill import DistillPlan

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
    """The trial ``distill`` takes: ``--trial N``, else the recommended one (:meth:`Search.trial`)."""
    return Search(storage=None, study_name=study.study_name, study=study).trial(number)


def options_from_args(args: argparse.Namespace) -> DistillOptions:
    """The :class:`DistillOptions` of the parsed options (every field is an option of the same name)."""
    names = DistillOptions.__dataclass_fields__
    values = {name: getattr(args, name) for name in names if hasattr(args, name)}
    for name in ("mean", "std", "milestones"):
        values[name] = tuple(values[name]) if values.get(name) is not None else None
    return DistillOptions(**values)


def _starting(args: argparse.Namespace) -> Callable[[DistillPlan], None]:
    def say(plan: DistillPlan) -> None:
        config, trial = plan.config, plan.trial
        err_console.print(  # what is about to run: stderr, with the progress
            f"[bold]distill[/bold] trial {trial.number} of {args.study}: {plan.model} "
            f"(score {trial.values[0]:.6g}) from {plan.teacher_name} ({plan.weights}) on {config.dataset} "
            f"({plan.num_classes} classes, {len(plan.train_set)} train / {len(plan.val_set)} eval images), preset "
            f"{plan.preset.name}: {config.epochs} epochs, KD gamma {config.kd_gamma} alpha {config.kd_alpha} rho "
            f"{config.kd_rho}, batch {config.batch_size}, lr {config.lr}, {config.device}, AMP {config.amp}",
            highlight=False,
        )

    return say


def _check_teacher_weights(search: Search, args: argparse.Namespace, trial: int) -> None:
    """Refuse a distillation without a teacher's checkpoint, with the commands that make and use one."""
    recorded = search.record
    if args.teacher_weights is None and not (recorded and recorded.config.teacher_weights):
        hint = distill_hint(search.study, search.storage, trial)
        raise DiswotError(f"distillation needs a trained teacher: pass --teacher-weights PATH, e.g. {hint}")


def run(args: argparse.Namespace) -> int:
    """Distil the chosen trial's student and record the result on the trial."""
    search = Search.load(args.storage, args.study)
    trial = search.trial(args.trial)
    _check_teacher_weights(search, args, trial.number)
    done = search.distill(
        trial=trial.number,
        options=options_from_args(args),
        reporter=lambda env: reporter_for(env, "distill", bar=not args.no_progress),
        on_start=_starting(args),
    )
    if done is not None:
        final = done.result.final
        console.print(summary_line(done.result, args.out, done.num_classes), highlight=False)
        console.print(
            f"trial {done.trial}: distill_top1 {final['top1']:.4f} recorded; checkpoint artifact {done.artifact} "
            f"in {done.artifact_dir}",
            highlight=False,
        )
    return 0
