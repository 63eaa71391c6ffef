"""``diswot search``: run (or resume) a DisWOT student search in an Optuna study, with N workers.

Every worker is a plain ``diswot search`` on the same study: Optuna's storage makes trial numbers
unique and the evolution population is read from it, so workers started in N shells, on N hosts
or with ``--workers N`` cooperate. ``--workers N`` runs this process as worker 0 and starts N-1
more as subprocesses (the storage URL goes to them through ``DISWOT_STORAGE``, never their
command line).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import logging
import math
import os
import re
import signal
import subprocess
import time
from typing import Any, Callable

import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from diswot.storage import (
    CONFIG_ATTR,
    ConfigMismatchError,
    RetryStaleTrial,
    fail_stale_trials,
    has_native_heartbeat,
    install_log_masking,
    open_storage,
    parse_storage_url,
    record_config,
    worker_identity,
)

from .._options import add_scoring_options, add_storage_options
from ..config import DEFAULT_PROXY, RECORDED_FIELDS, SAMPLERS, config_from_args
from ..errors import DiswotError
from ..notes import write_study_note
from ..report import fmt_limits, print_top
from ..objectives import best_score, check_directions, make_objective, name_metrics, search_constraint, study_directions
from ..search import TRIAL_ERRORS, attach_reference, failure_summary, make_sampler, make_scoring, name_objective
from ..workers import Interrupts, WorkerObjective, sampler_seed, split_trials, start_workers, wait_workers
from ._console import console, err_console

__all__ = ["COUNTED_STATES", "add_parser", "run"]

log = logging.getLogger(__name__)

#: the trial states that --max-trials counts: scored (or pruned) students; failures are not counted,
#: so a killed worker's trial and its retried copy count once
COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
#: a worker updates the study note at most this often during a search (and always at its end)
NOTE_MIN_SECONDS = 10.0
#: the study note is spaced by at least this many times its last write's duration (<= 2% of the time)
NOTE_COST_FACTOR = 50.0
#: options that are never recorded on the study and may change on every run
UNRECORDED = (
    "n_trials", "timeout", "data_dir", "device", "workers", "worker_index", "max_trials", "heartbeat",
    "grace_period", "max_retry", "sampler", "population_size", "tournament_size", "top", "note_every",
)

_parser: argparse.ArgumentParser | None = None


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``search`` sub-command."""
    global _parser
    p = sub.add_parser("search", help="search a student for a teacher (resumes an existing study)")
    add_scoring_options(p)
    add_storage_options(p, hint="; see README: many workers")
    g = p.add_argument_group("search")
    g.add_argument("--n-trials", type=int, default=100, help="trials to run in this invocation, split between --workers (default 100)")
    g.add_argument("--timeout", type=float, help="stop after this many seconds")
    g.add_argument("--max-params", help="parameter limit, e.g. 500K, 1M, 13M (default: the space's)")
    g.add_argument("--max-layers", type=int, help="layer limit (default: the space's; the paper uses 20 on S2)")
    g.add_argument("--max-flops", help="FLOPs-per-image limit, e.g. 500M, 2G (default: none)")
    g.add_argument(
        "--objectives",
        help="score (default), or the score against costs to minimise, e.g. score,params; "
        "any of params, flops, latency (ms per batch on the scoring device); see README: budgets",
    )
    g.add_argument("--sampler", default="evolution", choices=SAMPLERS, help="default evolution")
    g.add_argument("--population-size", type=int, default=20, help="evolution population P (default 20)")
    g.add_argument("--tournament-size", type=int, default=10, help="evolution tournament S (default 10)")
    g.add_argument("--top", type=int, default=10, help="students in the final table (default 10)")
    g.add_argument(
        "--allow-change",
        action="append",
        default=[],
        metavar="FIELD",
        help="a recorded field that may differ from the study's record when resuming (repeatable), "
        f"one of: {', '.join(RECORDED_FIELDS)}",
    )
    w = p.add_argument_group("workers (see README: many workers)")
    w.add_argument("--workers", type=int, default=1, metavar="N", help="run N local worker processes on the study (default 1)")
    w.add_argument(
        "--worker-index",
        type=int,
        metavar="I",
        help="index of a worker started by hand, for its own sampler seed (the probe batch stays the same)",
    )
    w.add_argument(
        "--max-trials",
        type=int,
        metavar="N",
        help="stop every worker once the study has this many COMPLETE or PRUNED trials "
        "(trials already running finish)",
    )
    w.add_argument("--heartbeat", type=int, metavar="SECONDS", help="heartbeat of running trials; a silent trial is failed and retried")
    w.add_argument("--grace-period", type=int, metavar="SECONDS", help="silence before a trial is stale (default 2 x --heartbeat)")
    w.add_argument("--max-retry", type=int, default=3, metavar="N", help="retries of a trial whose worker died (default 3)")
    w.add_argument("--note-every", type=int, default=10, metavar="N", help="update the dashboard study note every N trials (at most every 10 s, <= 2%% of the time); 0: no notes (default 10)")
    w.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in containers and logs)")
    w.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(run=run)
    _parser = p


class _QuietKnownFailures(logging.Filter):
    """Optuna's two warnings about a trial failed for a known reason -> one short line.

    Optuna prints the whole params dict and the traceback; the reason is enough (the params are
    in the storage). A trial stopped by Ctrl-C or SIGTERM gets no warning: the search says so.
    """

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, KeyboardInterrupt):
            return False
        message = record.getMessage() if record.name.startswith("optuna") else ""
        if re.fullmatch(r"Trial \d+ failed with value None\.", message):
            return False  # the first warning said why
        if isinstance(exc, TRIAL_ERRORS):
            number = re.match(r"Trial (\d+) ", message)
            record.msg, record.args = f"Trial {number[1] if number else '?'} failed: {exc}", None
            record.exc_info = record.exc_text = None
        return True


def _check_args(args: argparse.Namespace) -> None:
    for name, minimum in (("n_trials", 1), ("workers", 1), ("max_trials", 1), ("heartbeat", 1), ("grace_period", 1), ("max_retry", 0), ("note_every", 0), ("worker_index", 0)):
        value = getattr(args, name, None)
        if value is not None and value < minimum:
            raise DiswotError(f"--{name.replace('_', '-')} must be >= {minimum}, got {value}")
    if args.grace_period is not None and args.heartbeat is None:
        raise DiswotError("--grace-period needs --heartbeat SECONDS")
    if args.workers > 1 and args.worker_index is not None:
        raise DiswotError("--worker-index is for workers started by hand; --workers numbers its workers itself")


def _mutable_fields(names: list[str]) -> set[str]:
    fields = set()
    for name in names:
        for part in name.split(","):
            field = part.strip().lstrip("-").replace("-", "_")
            if field in RECORDED_FIELDS:
                fields.add(field)
            elif field in UNRECORDED:
                log.info("--allow-change %s: %s is never recorded and may always change", part, field)
            else:
                raise DiswotError(f"--allow-change {part!r}: not a recorded field; valid: {', '.join(RECORDED_FIELDS)}")
    return fields


def recorded_proxy(storage: optuna.storages.BaseStorage, study_name: str) -> str | None:
    """The proxy recorded on an existing study (None for a new study); creates nothing."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return None
    config = storage.get_study_user_attrs(study_id).get(CONFIG_ATTR) or {}
    return config.get("proxy") if isinstance(config, dict) else None


def _counted(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=COUNTED_STATES))



#: how often a worker looks for stale RUNNING trials during a search (it scans the study's trials)
STALE_CHECK_SECONDS = 30.0


def _throttled(check: Callable[[optuna.Study], object], seconds: float) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """A trial callback that runs ``check(study)`` at most once every ``seconds``."""
    last = time.monotonic()

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal last
        if time.monotonic() - last >= seconds:
            last = time.monotonic()
            check(study)

    return callback

def run(args: argparse.Namespace) -> int:
    """Run the search (this process is worker 0 of ``--workers``) and print the best students."""
    import torch

    threads = torch.get_num_threads()
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads)  # --workers lowers them for this process only while it runs


def _run(args: argparse.Namespace) -> int:
    install_log_masking()
    _check_args(args)
    if args.verbose == 0:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = config_from_args(args)  # every option checked before any storage is opened
    mutable = _mutable_fields(args.allow_change)
    child = bool(getattr(args, "child", False))
    parsed = parse_storage_url(args.storage)
    grace = args.grace_period or (2 * args.heartbeat if args.heartbeat else None)
    retry = RetryStaleTrial(max_retry=args.max_retry)
    native = parsed.kind == "rdb" and args.heartbeat is not None
    storage = open_storage(
        args.storage,
        heartbeat_interval=args.heartbeat if native else None,
        grace_period=grace if native else None,
        stale_trial_callback=retry if native else None,
        async_commit=True,  # a trial's small writes are not flushed to the disk one by one
    )
    if args.proxy is None:  # a resumed study keeps its score; a new one gets the default
        config = replace(config, proxy=recorded_proxy(storage, args.study) or DEFAULT_PROXY)
    shares = split_trials(args.n_trials, args.workers)
    threads = None
    if len(shares) > 1 and "OMP_NUM_THREADS" not in os.environ:  # share the cores between the workers
        import torch

        threads = max(1, (os.cpu_count() or 1) // len(shares))
        torch.set_num_threads(threads)
    setup = make_scoring(config)
    index = args.worker_index if args.worker_index is not None else 0
    sampler = make_sampler(
        config.sampler,
        space=setup.space,
        limits=setup.limits,
        num_classes=setup.num_classes,
        seed=sampler_seed(config.seed, index),
        population_size=config.population_size,
        tournament_size=config.tournament_size,
        constraint=search_constraint(setup, config.max_flops),
    )
    study = optuna.create_study(
        storage=storage, study_name=args.study, directions=study_directions(config.objectives), sampler=sampler,
        load_if_exists=True,
    )
    if CONFIG_ATTR not in study.user_attrs:  # a study from elsewhere: check it before writing to it
        check_directions(study, config.objectives)
    try:
        resumed = record_config(study, setup.recorded(), mutable=mutable)
    except ConfigMismatchError as exc:
        raise ConfigMismatchError(f"{exc}, or allow it with --allow-change FIELD") from None
    check_directions(study, config.objectives)
    name_metrics(study, config.objectives)
    if len(study.directions) == 1:  # optuna-dashboard names the objective after the proxy
        name_objective(study, config.proxy)
    if setup.scorer.proxy.reference_terms and not child:
        console.print(
            f"{config.proxy}: reference sample of {config.reference_size} architectures "
            "(scored once per study, stored in it)",
            highlight=False,
        )
    attach_reference(setup, study)
    log.info("worker %d: study %s in %s, sampler seed %d", index, args.study, parsed, sampler_seed(config.seed, index))
    stale = fail_stale_trials(study, grace_period=grace, retry=retry)
    note_config: dict[str, Any] = {
        "study": args.study,
        "storage": str(parsed),
        **setup.recorded(),
        "sampler": config.sampler,
        "population_size": config.population_size,
        "tournament_size": config.tournament_size,
        "max_trials": args.max_trials,
        "heartbeat": args.heartbeat,
    }
    notes = args.note_every > 0
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if not child:
        console.print(
            f"[bold]{'resuming' if resumed else 'new'} study[/bold] {args.study} in {parsed}: "
            f"space {config.space}, teacher {config.teacher}, proxy {config.proxy}, "
            f"{setup.num_classes} classes, limits: {fmt_limits(setup.limits)}, {done} completed trials so far"
            + (f", {len(stale)} stale trials of dead workers re-queued" if stale else "")
            + (f"; {len(shares)} workers" if len(shares) > 1 else ""),
            highlight=False,
        )
    if args.max_trials is not None and _counted(study) >= args.max_trials:
        if not child:
            console.print(f"study {args.study} already has {_counted(study)} scored trials (--max-trials {args.max_trials}); nothing to run")
        return 0
    note_cost = 0.0
    if notes and not child:
        start = time.monotonic()
        write_study_note(study, note_config)
        note_cost = time.monotonic() - start

    # Optuna's trial-failure warnings come from child loggers: filter at the handlers.
    quiet = _QuietKnownFailures()
    handlers = {*logging.getLogger("optuna").handlers, *logging.getLogger().handlers}
    for handler in handlers:
        handler.addFilter(quiet)
    interrupts = Interrupts()
    interrupts.study = study
    objective = WorkerObjective(
        objective=make_objective(setup, config.objectives, config.max_flops),
        interrupts=interrupts,
        identity={**worker_identity(), "index": index},
        heartbeat=None if native else args.heartbeat,
        notes=notes,
    )
    callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = []
    if args.max_trials is not None:
        callbacks.append(MaxTrialsCallback(args.max_trials, states=COUNTED_STATES))
    if not has_native_heartbeat(study._storage):
        callbacks.append(_throttled(lambda s: fail_stale_trials(s, grace_period=grace, retry=retry), STALE_CHECK_SECONDS))
    if notes:
        last_note = [time.monotonic(), note_cost]  # when the study note was last written, and what it cost

        def note_callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            # every --note-every trials, not more often than every NOTE_MIN_SECONDS per worker, and
            # spaced so that notes take at most 1 / NOTE_COST_FACTOR of the worker's time:
            # save_note reads all notes, so its cost grows with the study
            wait = max(NOTE_MIN_SECONDS, NOTE_COST_FACTOR * last_note[1])
            if (trial.number + 1) % args.note_every == 0 and time.monotonic() - last_note[0] >= wait:
                start = time.monotonic()
                write_study_note(study, note_config)
                end = time.monotonic()
                last_note[:] = [end, end - start]

        callbacks.append(note_callback)

    best = best_score(study) if done else -math.inf
    ran: list[optuna.trial.FrozenTrial] = []  # this worker's trials, for the failure summary
    children: list[subprocess.Popen[bytes]] = []
    codes: list[int] = []
    interrupted = False
    with interrupts.installed(), Progress(
        TextColumn("[bold blue]search" + (" (worker 0)" if len(shares) > 1 else "")),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=args.no_progress,
    ) as progress:
        task = progress.add_task("search", total=shares[0], best=f"{best:.6g}" if done else "-")

        def on_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            nonlocal best
            ran.append(trial)
            if trial.state == TrialState.COMPLETE and trial.values and trial.values[0] > best:
                best = trial.values[0]
            progress.update(task, advance=1, best=f"{best:.6g}" if math.isfinite(best) else "-")

        try:
            assert _parser is not None
            children = start_workers(_parser, args, shares, threads)
            if interrupts.interrupted:
                raise KeyboardInterrupt
            study.optimize(
                objective,
                n_trials=shares[0],
                timeout=args.timeout,
                catch=TRIAL_ERRORS,
                callbacks=[on_trial, *callbacks],
            )
            if interrupts.interrupted:
                raise KeyboardInterrupt
        except BaseException:  # Ctrl-C, SIGTERM or an error: stop the other workers too
            interrupted = True
            raise
        finally:
            for handler in handlers:
                handler.removeFilter(quiet)
            codes = wait_workers(children, interrupts, interrupted=interrupted)
            if notes:
                write_study_note(study, note_config)

    states = [t.state for t in study.get_trials(deepcopy=False)]
    if child:
        log.info("worker %d finished %d trials", index, shares[0])
        return 0
    console.print(
        f"{states.count(TrialState.COMPLETE)} complete, {states.count(TrialState.FAIL)} failed "
        f"trials in study {args.study}",
        highlight=False,
    )
    print_top(console, study, args.top)
    summary = failure_summary(ran, sampler=config.sampler)
    if summary:
        err_console.print(f"[bold red]error:[/bold red] {escape(summary)}", highlight=False, soft_wrap=True)
        return 1
    failed = [(i + 1, c) for i, c in enumerate(codes) if c not in (0, 130, -signal.SIGINT, -signal.SIGTERM)]
    for i, code in failed:
        console.print(f"[yellow]worker {i} exited with status {code}[/yellow]", highlight=False)
    return 1 if failed else 0
