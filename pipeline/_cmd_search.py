"""``diswot search``: run (or resume) a DisWOT student search in an Optuna study."""

from __future__ import annotations

import argparse
import logging
import math

import optuna
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from diswot.storage import mask_url, open_storage, record_config

from ._options import add_scoring_options, add_storage_options
from .config import SAMPLERS, config_from_args
from .errors import DiswotError
from .report import top_table
from .search import TRIAL_ERRORS, SearchObjective, make_sampler, make_scoring

__all__ = ["add_parser", "run"]

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``search`` sub-command."""
    p = sub.add_parser("search", help="search a student for a teacher (resumes an existing study)")
    add_scoring_options(p)
    add_storage_options(p)
    g = p.add_argument_group("search")
    g.add_argument("--n-trials", type=int, default=100, help="trials to run in this invocation (default 100)")
    g.add_argument("--timeout", type=float, help="stop after this many seconds")
    g.add_argument("--max-params", help="parameter limit, e.g. 500K, 1M, 13M (default: the space's)")
    g.add_argument("--max-layers", type=int, help="layer limit (default: the space's; the paper uses 20 on S2)")
    g.add_argument("--sampler", default="evolution", choices=SAMPLERS, help="default evolution")
    g.add_argument("--population-size", type=int, default=20, help="evolution population P (default 20)")
    g.add_argument("--tournament-size", type=int, default=10, help="evolution tournament S (default 10)")
    g.add_argument("--top", type=int, default=10, help="students in the final table (default 10)")
    p.set_defaults(run=run)


class _QuietKnownFailures(logging.Filter):
    """Drop the traceback from Optuna's warning about a trial failed for a known reason."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        if record.exc_info and isinstance(record.exc_info[1], TRIAL_ERRORS):
            record.exc_info = None
        return True


def run(args: argparse.Namespace) -> int:
    """Run the search and print the best students."""
    from .cli import console

    if args.n_trials is not None and args.n_trials < 1:
        raise DiswotError(f"--n-trials must be >= 1, got {args.n_trials}")
    config = config_from_args(args)
    storage = open_storage(args.storage)
    setup = make_scoring(config)
    sampler = make_sampler(
        config.sampler,
        space=setup.space,
        limits=setup.limits,
        num_classes=setup.num_classes,
        seed=config.seed,
        population_size=config.population_size,
        tournament_size=config.tournament_size,
    )
    study = optuna.create_study(
        storage=storage, study_name=args.study, direction="maximize", sampler=sampler, load_if_exists=True
    )
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise DiswotError(f"study {args.study!r} exists and minimises; DisWOT studies maximise. Use another --study")
    resumed = record_config(study, setup.recorded())
    done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    console.print(
        f"[bold]{'resuming' if resumed else 'new'} study[/bold] {args.study} in {mask_url(args.storage)}: "
        f"space {config.space}, teacher {config.teacher}, proxy {config.proxy}, "
        f"{setup.num_classes} classes, limits {setup.limits}, {done} completed trials so far",
        highlight=False,
    )
    optuna_logger = logging.getLogger("optuna")
    quiet = _QuietKnownFailures()
    optuna_logger.addFilter(quiet)
    if args.verbose == 0:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    best = study.best_value if done else -math.inf
    with Progress(
        TextColumn("[bold blue]search"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("search", total=args.n_trials, best=f"{best:.6g}" if done else "-")

        def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            nonlocal best
            if trial.state == optuna.trial.TrialState.COMPLETE and trial.value is not None and trial.value > best:
                best = trial.value
            progress.update(task, advance=1, best=f"{best:.6g}" if math.isfinite(best) else "-")

        try:
            study.optimize(
                SearchObjective(setup),
                n_trials=args.n_trials,
                timeout=args.timeout,
                catch=TRIAL_ERRORS,
                callbacks=[callback],
            )
        finally:
            optuna_logger.removeFilter(quiet)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    console.print(
        f"{states.count(optuna.trial.TrialState.COMPLETE)} complete, {states.count(optuna.trial.TrialState.FAIL)} failed "
        f"trials in study {args.study}",
        highlight=False,
    )
    console.print(top_table(study, args.top))
    return 0
