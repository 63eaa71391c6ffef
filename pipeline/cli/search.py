"""``diswot search``: run (or resume) a DisWOT student search in an Optuna study, with N workers.

The search itself is :func:`diswot.pipeline.run_search`'s pieces (:mod:`diswot.pipeline.runner`);
this command parses the options, prints, and runs the extra local workers. Every worker is a plain
``diswot search`` on the same study: Optuna's storage makes trial numbers unique and the evolution
population is read from it, so workers started in N shells, on N hosts or with ``--workers N``
cooperate. ``--workers N`` runs this process as worker 0 and starts N-1 more as subprocesses (the
storage URL goes to them through ``DISWOT_STORAGE``, never their command line).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import subprocess
import time
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .._options import Bounded, add_scoring_options, add_storage_options
from ..confirm import pick_size
from ..config import (
    CHANGEABLE_FIELDS,
    DEFAULT_CONFIRM_REPEATS,
    DEFAULT_CONFIRM_TOP,
    SAMPLERS,
    SearchConfig,
    config_from_args,
)
from ..errors import DiswotError
from ..notes import StudyNotes
from ..progress import LOG_EVERY_SECONDS, StepProgress, steps
from ..report import fmt_limits, print_top
from ..workers import Interrupts, local_workers, split_trials, start_workers, usable_cores, wait_workers
from ._console import console, err_console

if TYPE_CHECKING:  # the search itself (torch) is imported when it runs, not when options are parsed
    from ..runner import OpenSearch, WorkerOptions

__all__ = ["add_parser", "run", "worker_options"]

log = logging.getLogger(__name__)

_parser: argparse.ArgumentParser | None = None


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``search`` sub-command."""
    global _parser
    p = sub.add_parser("search", help="search a student for a teacher (resumes an existing study)")
    add_scoring_options(p)
    add_storage_options(p, hint="; see README: many workers")
    g = p.add_argument_group("search")
    g.add_argument(
        "--n-trials",
        type=Bounded(at_least=1),
        default=100,
        help="trials to run in this invocation, split between --workers (default 100)",
    )
    g.add_argument("--timeout", type=Bounded(float, above=0), help="stop after this many seconds")
    g.add_argument("--max-params", help="parameter limit, e.g. 500K, 1M, 13M (default: the space's)")
    g.add_argument(
        "--max-layers", type=Bounded(at_least=1), help="layer limit (default: the space's; the paper uses 20 on S2)"
    )
    g.add_argument("--max-flops", help="FLOPs-per-image limit, e.g. 500M, 2G (default: none)")
    g.add_argument(
        "--objectives",
        help="score (default), or the score against costs to minimise, e.g. score,params; "
        "any of params, flops, latency (ms per batch on the scoring device); see README: budgets",
    )
    g.add_argument("--sampler", default="evolution", choices=SAMPLERS, help="default evolution")
    g.add_argument(
        "--population-size", type=Bounded(at_least=1), default=20, help="evolution population P (default 20)"
    )
    g.add_argument(
        "--tournament-size", type=Bounded(at_least=1), default=10, help="evolution tournament S (default 10)"
    )
    g.add_argument("--top", type=Bounded(at_least=1), default=10, help="students in the final table (default 10)")
    g.add_argument(
        "--confirm-top",
        type=Bounded(at_least=0),
        metavar="K",
        help="re-score the K best distinct students with --confirm-repeats before recommending one (default: one "
        f"for every 8 students scored, from 3 to {DEFAULT_CONFIRM_TOP}; 0: none)",
    )
    g.add_argument(
        "--confirm-repeats",
        type=Bounded(at_least=1),
        default=DEFAULT_CONFIRM_REPEATS,
        metavar="R",
        help=f"probe batches and initialisations of a confirmed score, the trial's own included (default {DEFAULT_CONFIRM_REPEATS})",
    )
    g.add_argument(
        "--allow-change",
        action="append",
        default=[],
        metavar="FIELD",
        help="a recorded field that may differ from the study's record when resuming (repeatable), "
        f"one of: {', '.join(CHANGEABLE_FIELDS)}",
    )
    w = p.add_argument_group("workers (see README: many workers)")
    w.add_argument(
        "--workers",
        type=Bounded(at_least=1),
        default=1,
        metavar="N",
        help="run N local worker processes on the study (default 1; on the CPU at most one per core)",
    )
    w.add_argument(
        "--worker-index",
        type=Bounded(at_least=0),
        metavar="I",
        help="index of a worker started by hand, for its own sampler seed (the probe batch stays the same)",
    )
    w.add_argument(
        "--max-trials",
        type=Bounded(at_least=1),
        metavar="N",
        help="stop every worker once the study has this many COMPLETE or PRUNED trials (trials already running finish)",
    )
    w.add_argument(
        "--heartbeat",
        type=Bounded(at_least=1),
        metavar="SECONDS",
        help="heartbeat of running trials; a silent trial is failed and retried",
    )
    w.add_argument(
        "--grace-period",
        type=Bounded(at_least=1),
        metavar="SECONDS",
        help="silence before a trial is stale (default 2 x --heartbeat)",
    )
    w.add_argument(
        "--max-retry",
        type=Bounded(at_least=0),
        default=3,
        metavar="N",
        help="retries of a trial whose worker died (default 3)",
    )
    w.add_argument(
        "--note-every",
        type=Bounded(at_least=0),
        default=10,
        metavar="N",
        help="update the dashboard study note every N trials (at most every 10 s, <= 2%% of the time); 0: no notes (default 10)",
    )
    w.add_argument(
        "--rescore",
        action="store_true",
        help="score every trial's student, even one the study has scored (a score is deterministic, so only the "
        "time changes: for timing the scorer; by default a known student gets its stored score)",
    )
    w.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in containers and logs)")
    w.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(run=run)
    _parser = p


def _checked_options(args: argparse.Namespace) -> WorkerOptions:
    """Check the options of the command and the worker's (:class:`WorkerOptions`); the latter."""
    for name in ("n_trials", "workers"):
        value = getattr(args, name)
        if value < 1:
            raise DiswotError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    options = worker_options(args)
    if args.workers > 1 and args.worker_index is not None:
        raise DiswotError("--worker-index is for workers started by hand; --workers numbers its workers itself")
    return options


def worker_options(args: argparse.Namespace) -> WorkerOptions:
    """This worker's :class:`WorkerOptions` from the parsed options."""
    from ..runner import WorkerOptions

    return WorkerOptions(
        study_name=args.study,
        worker_index=args.worker_index if args.worker_index is not None else 0,
        max_trials=args.max_trials,
        heartbeat=args.heartbeat,
        grace_period=args.grace_period,
        max_retry=args.max_retry,
        note_every=args.note_every,
        allow_change=tuple(args.allow_change),
        keep_study_proxy=args.proxy is None,  # a resumed study keeps its score; a new one gets the default
        rescore=args.rescore,
    )


def _share_cores(workers: int) -> int | None:
    """With several local workers and no ``OMP_NUM_THREADS``, this process's share of the cores."""
    if workers == 1 or "OMP_NUM_THREADS" in os.environ:
        return None
    import torch

    threads = max(1, usable_cores() // workers)
    torch.set_num_threads(threads)
    return threads


def _announce_reference(config: SearchConfig, reused: bool) -> None:
    what = (
        "reused: scored when the study was created, stored in it"
        if reused
        else "scored once for this new study, then stored in it"
    )
    console.print(
        f"{config.proxy}: reference sample of {config.reference_size} architectures ({what})", highlight=False
    )


def _progress(args: argparse.Namespace) -> StepProgress:
    """The search's stages (reference sample, pick): a bar on a terminal, else a line every 30 s."""
    return lambda label, total: steps(console, label, total, bar=not args.no_progress)


def _print_header(search: OpenSearch, done: int, workers: int) -> None:
    config, setup = search.config, search.setup
    console.print(
        f"[bold]{'resuming' if search.resumed else 'new'} study[/bold] {search.options.study_name} in {search.storage}: "
        f"space {config.space}, teacher {config.teacher}, proxy {config.proxy}, "
        f"{setup.num_classes} classes, limits: {fmt_limits(setup.limits)}, {done} completed trials so far"
        + (f", {len(search.stale)} stale trials of dead workers re-queued" if search.stale else "")
        + (f"; {workers} workers" if workers > 1 else ""),
        highlight=False,
    )


def run(args: argparse.Namespace) -> int:
    """Run the search (this process is worker 0 of ``--workers``) and print the best students."""
    import torch

    threads = torch.get_num_threads()
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads)  # --workers lowers them for this process only while it runs


def _run(args: argparse.Namespace) -> int:
    from ..runner import open_search

    options = _checked_options(args)
    if args.verbose == 0:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = config_from_args(args)  # every option checked before any storage is opened
    child = bool(getattr(args, "child", False))
    workers = local_workers(args.workers, config.device)
    if workers < args.workers and not child:
        console.print(
            f"--workers {args.workers} on {usable_cores()} CPU cores: running {workers} worker processes "
            "(one per core; more would share the cores and finish later)",
            highlight=False,
        )
    shares = split_trials(args.n_trials, workers)
    threads = _share_cores(len(shares))
    search = open_search(
        config,
        args.storage,
        options,
        on_reference=None if child else _announce_reference,
        progress=None if child else _progress(args),
        n_trials=args.n_trials,
    )
    done = search.completed()
    if not child:
        _print_header(search, done, len(shares))
    if search.capped():
        if not child:
            console.print(
                f"study {options.study_name} already has {search.counted()} scored trials "
                f"(--max-trials {options.max_trials}); nothing to run"
            )
        return 0
    notes = StudyNotes(search.study, search.note_config(), every=options.note_every) if options.note_every else None
    if notes is not None and not child:
        notes.write()
    ran, codes = _run_workers(args, search, shares, threads, notes, done)
    if child:
        log.info("worker %d finished %d trials", options.worker_index, shares[0])
        return 0
    _confirm(search, _progress(args))
    return _report(args, search, ran, codes)


def _confirm(search: OpenSearch, progress: StepProgress) -> None:
    """Re-score the best students before the report names one (:mod:`diswot.pipeline.confirm`)."""
    from ..runner import confirm_search

    config = search.config
    top = pick_size(search.study, config.confirm_top)
    if len(search.study.directions) == 1 and top > 0 and search.completed():
        console.print(
            f"confirming the {top} best students with {config.confirm_repeats} repeats each",
            highlight=False,
        )
        confirm_search(search, progress=progress)


def _run_workers(
    args: argparse.Namespace,
    search: OpenSearch,
    shares: list[int],
    threads: int | None,
    notes: StudyNotes | None,
    done: int,
) -> tuple[list[optuna.trial.FrozenTrial], list[int]]:
    """Run this worker's trials under a progress bar while workers 1..N-1 run theirs; their exit codes."""
    from ..objectives import best_score
    from ..runner import run_trials

    best = best_score(search.study) if done else -math.inf
    ran: list[optuna.trial.FrozenTrial] = []  # this worker's trials, for the failure summary
    children: list[subprocess.Popen[bytes]] = []
    codes: list[int] = []
    interrupted = False
    interrupts = Interrupts()
    with (
        interrupts.installed(),
        Progress(
            TextColumn("[bold blue]search" + (" (worker 0)" if len(shares) > 1 else "")),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("best {task.fields[best]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=args.no_progress,
        ) as progress,
    ):
        task = progress.add_task("search", total=shares[0], best=f"{best:.6g}" if done else "-")
        lines = args.no_progress or not console.is_terminal  # in a log: a line every 30 s instead of the bar
        started = last_line = time.monotonic()

        def on_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            nonlocal best
            ran.append(trial)
            if trial.state == TrialState.COMPLETE and trial.values and trial.values[0] > best:
                best = trial.values[0]
            progress.update(task, advance=1, best=f"{best:.6g}" if math.isfinite(best) else "-")
            nonlocal last_line
            if lines and time.monotonic() - last_line >= LOG_EVERY_SECONDS:
                last_line = time.monotonic()
                console.print(
                    f"search: {len(ran)}/{shares[0]} trials, best {best:.6g} ({last_line - started:.0f} s)",
                    highlight=False,
                )

        try:
            assert _parser is not None
            children = start_workers(_parser, args, shares, threads)
            run_trials(
                search, shares[0], timeout=args.timeout, callbacks=[on_trial], notes=notes, interrupts=interrupts
            )
        except BaseException:  # Ctrl-C, SIGTERM or an error: stop the other workers too
            interrupted = True
            raise
        finally:
            codes = wait_workers(children, interrupts, interrupted=interrupted)
            if notes is not None:
                notes.write()  # with every worker's trials
    return ran, codes


def _report(args: argparse.Namespace, search: OpenSearch, ran: list[optuna.trial.FrozenTrial], codes: list[int]) -> int:
    """The counts, the best students, and one line on failures; the exit status."""
    from ..search import failure_summary

    states = [t.state for t in search.study.get_trials(deepcopy=False)]
    console.print(
        f"{states.count(TrialState.COMPLETE)} complete, {states.count(TrialState.FAIL)} failed "
        f"trials in study {search.options.study_name}",
        highlight=False,
    )
    print_top(console, search.study, args.top)
    if len(search.study.directions) > 1 and search.completed():
        name = search.options.study_name
        console.print(
            f"{len(search.study.directions)} objectives: no single student is best; see the front with "
            f"diswot show --study {name} --pareto, or the best within a budget with "
            f"diswot show --study {name} --budget params=1M",
            highlight=False,
        )
    summary = failure_summary(ran, sampler=search.config.sampler)
    if summary:
        err_console.print(f"[bold red]error:[/bold red] {escape(summary)}", highlight=False, soft_wrap=True)
        return 1
    failed = [(i + 1, c) for i, c in enumerate(codes) if c not in (0, 130, -signal.SIGINT, -signal.SIGTERM)]
    for i, code in failed:
        console.print(f"[yellow]worker {i} exited with status {code}[/yellow]", highlight=False)
    return 1 if failed else 0
