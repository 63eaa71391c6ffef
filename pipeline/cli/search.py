"""``diswot search``: run (or resume) a DisWOT student search in an Optuna study, with N workers.

The search itself is :func:`diswot.pipeline.run_search` (:mod:`diswot.pipeline.search`); this command
parses the options and passes :class:`~diswot.pipeline.search.SearchHooks` that print, draw the
progress bar and run the extra local workers alongside this worker's trials. Every worker is a plain
``diswot search`` on the same study: Optuna's storage makes trial numbers unique and the evolution
population is read from it, so workers started in N shells, on N hosts or with ``--workers N``
cooperate. ``--workers N`` runs this process as worker 0 and starts N-1 more as subprocesses (the
storage URL goes to them through ``DISWOT_STORAGE``, never their command line).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import signal
import subprocess
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Iterator

import optuna
from optuna.trial import TrialState
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from .._format import fmt_limits
from ..config import CHANGEABLE_FIELDS, DEFAULT_PICK_REPEATS, DEFAULT_PICK_TOP, SAMPLERS, SearchConfig, WorkerOptions
from ..errors import DiswotError, ScoreChangeError
from ..progress import LOG_EVERY_SECONDS, StepProgress
from ..worker import Interrupts
from ._console import console, err_console
from ._options import (
    DEFAULT,
    WORKER_DEFAULT,
    Bounded,
    add_progress_option,
    add_scoring_options,
    add_storage_options,
    add_top_option,
    config_from_args,
)
from ._progress import steps
from ._report import print_top
from ._workers import local_workers, split_trials, start_workers, usable_cores, wait_workers

if TYPE_CHECKING:  # the search itself (torch) is imported when it runs, not when options are parsed
    from ..study import OpenSearch

__all__ = ["add_parser", "run", "worker_options"]

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``search`` sub-command."""
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
    g.add_argument("--sampler", default=DEFAULT["sampler"], choices=SAMPLERS, help=f"default {DEFAULT['sampler']}")
    g.add_argument(
        "--population-size",
        type=Bounded(at_least=1),
        default=DEFAULT["population_size"],
        help=f"evolution population P (default {DEFAULT['population_size']})",
    )
    g.add_argument(
        "--tournament-size",
        type=Bounded(at_least=1),
        default=DEFAULT["tournament_size"],
        help=f"evolution tournament S (default {DEFAULT['tournament_size']})",
    )
    add_top_option(g)
    g.add_argument(
        "--pick-top",
        type=Bounded(at_least=0),
        metavar="K",
        help="the pick: re-score the K best distinct students with --pick-repeats before recommending one "
        f"(default: one for every 8 students scored, from 3 to {DEFAULT_PICK_TOP}; 0: none)",
    )
    g.add_argument(
        "--pick-repeats",
        type=Bounded(at_least=1),
        default=DEFAULT_PICK_REPEATS,
        metavar="R",
        help=f"probe batches and initialisations of a pick score, the trial's own included (default {DEFAULT_PICK_REPEATS})",
    )
    # the names before the pick stage had one word, kept as hidden aliases
    g.add_argument("--confirm-top", dest="pick_top", type=Bounded(at_least=0), help=argparse.SUPPRESS)
    g.add_argument(
        "--confirm-repeats",
        dest="pick_repeats",
        type=Bounded(at_least=1),
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )
    g.add_argument(
        "--allow-change",
        action="append",
        default=[],
        metavar="FIELD",
        help="a recorded limit that may differ from the study's record when resuming (repeatable), "
        f"one of: {', '.join(CHANGEABLE_FIELDS)}; a field that decides the scores (teacher, proxy, ...) "
        "needs a new --study",
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
        default=WORKER_DEFAULT["max_retry"],
        metavar="N",
        help=f"retries of a trial whose worker died (default {WORKER_DEFAULT['max_retry']})",
    )
    w.add_argument(
        "--note-every",
        type=Bounded(at_least=0),
        default=WORKER_DEFAULT["note_every"],
        metavar="N",
        help="update the dashboard study note every N trials (at most every 10 s, <= 2%% of the time); 0: no notes "
        f"(default {WORKER_DEFAULT['note_every']})",
    )
    w.add_argument(
        "--rescore",
        action="store_true",
        help="score every trial's student, even one the study has scored (a score is deterministic, so only the "
        "time changes: for timing the scorer; by default a known student gets its stored score)",
    )
    add_progress_option(w)
    w.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(run=run, parser=p)  # the parser: worker subprocesses get the options that differ from it


def _checked_options(args: argparse.Namespace) -> dict[str, Any]:
    """Check the options of the command and the worker's; the latter, as :func:`run_search` takes them."""
    from ..study import mutable_fields

    try:
        mutable_fields(args.allow_change)
    except ScoreChangeError as exc:
        from ._hints import new_study_command

        raise DiswotError(f"{exc}: {new_study_command(args.parser, args, exc.field)}") from None
    options = worker_options(args)
    WorkerOptions(study_name=args.study, **options)  # refused here, before any storage is opened
    if args.workers > 1 and args.worker_index is not None:
        raise DiswotError("--worker-index is for workers started by hand; --workers numbers its workers itself")
    return options


def worker_options(args: argparse.Namespace) -> dict[str, Any]:
    """This worker's :class:`~diswot.pipeline.study.WorkerOptions` fields (but the study name) from the options."""
    return {
        "worker_index": args.worker_index if args.worker_index is not None else 0,
        "max_trials": args.max_trials,
        "heartbeat": args.heartbeat,
        "grace_period": args.grace_period,
        "max_retry": args.max_retry,
        "note_every": args.note_every,
        "allow_change": tuple(args.allow_change),
        "rescore": args.rescore,
    }


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
    err_console.print(
        f"{config.proxy}: reference sample of {config.reference_size} architectures ({what})", highlight=False
    )


def _progress(args: argparse.Namespace) -> StepProgress:
    """The search's stages (reference sample, pick): a bar on a terminal, else a line every 30 s."""
    return lambda label, total: steps(err_console, label, total, bar=not args.no_progress)


def _print_header(search: OpenSearch, done: int, workers: int) -> None:
    config, setup = search.config, search.setup
    err_console.print(
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

    from .._scoped import optuna_verbosity

    threads = torch.get_num_threads()
    quiet = optuna_verbosity(optuna.logging.WARNING) if args.verbose == 0 else contextlib.nullcontext()
    try:
        with quiet:  # Optuna's per-trial lines only with -v
            return _run(args)
    finally:
        torch.set_num_threads(threads)  # --workers lowers them for this process only while it runs


def _run(args: argparse.Namespace) -> int:
    from ..search import SearchHooks, run_search

    options = _checked_options(args)
    config = config_from_args(args)  # every option checked before any storage is opened
    if args.proxy is None:  # no --proxy: a resumed study keeps its score; a new one gets the default
        from ..study import recorded_proxy

        config = replace(config, proxy=recorded_proxy(args.storage, args.study) or config.proxy)
    child = bool(getattr(args, "child", False))
    workers = local_workers(args.workers, config.device)
    if workers < args.workers and not child:
        err_console.print(
            f"--workers {args.workers} on {usable_cores()} CPU cores: running {workers} worker processes "
            "(one per core; more would share the cores and finish later)",
            highlight=False,
        )
    shares = split_trials(args.n_trials, workers)
    view = _SearchView(args, shares, _share_cores(len(shares)), child=child)
    hooks = SearchHooks(
        on_reference=None if child else _announce_reference,
        on_open=view.opened,
        alongside=view.alongside,
        on_pick=None if child else _announce_pick,
    )
    run_search(
        config,
        args.storage,
        n_trials=shares[0],
        timeout=args.timeout,
        study_name=args.study,
        callbacks=[view.on_trial],
        progress=False if child else _progress(args),
        pick=not child,
        study_trials=args.n_trials,
        hooks=hooks,
        **options,
    )
    search = view.search
    assert search is not None
    if child:
        log.info("worker %d finished %d trials", search.options.worker_index, len(view.ran))
        return 0
    if view.nothing_to_run:
        return 0
    return _report(args, search, view.ran, view.codes)


def _announce_pick(search: OpenSearch, top: int) -> None:
    best = "the best student" if top == 1 else f"the {top} best students"
    err_console.print(
        f"the pick: {best}, {search.config.pick_repeats} repeats each (stored pick scores are reused)", highlight=False
    )


class _SearchView:
    """What ``diswot search`` shows and adds around :func:`~diswot.pipeline.search.run_search`: the
    header, the progress bar of this worker's trials, and workers 1..N-1 as subprocesses."""

    def __init__(self, args: argparse.Namespace, shares: list[int], threads: int | None, *, child: bool) -> None:
        self.args, self.shares, self.threads, self.child = args, shares, threads, child
        self.search: OpenSearch | None = None
        self.nothing_to_run = False
        self.ran: list[optuna.trial.FrozenTrial] = []  # this worker's trials, for the failure summary
        self.codes: list[int] = []
        self.best = -math.inf
        self.advance: Callable[[], None] = lambda: None

    def opened(self, search: OpenSearch) -> None:
        """The header, or why nothing runs."""
        self.search = search
        done = search.completed()
        self.best = best_score(search.study) if done else -math.inf
        if self.child:
            return
        _print_header(search, done, len(self.shares))
        if search.capped():
            self.nothing_to_run = True
            err_console.print(
                f"study {search.options.study_name} already has {search.counted()} scored trials "
                f"(--max-trials {search.options.max_trials}); nothing to run"
            )

    @contextlib.contextmanager
    def alongside(self, search: OpenSearch, interrupts: Interrupts) -> Iterator[None]:
        """This worker's progress bar, and the other local workers, started and waited for."""
        children: list[subprocess.Popen[bytes]] = []
        interrupted = False
        with Progress(
            TextColumn("[bold blue]search" + (" (worker 0)" if len(self.shares) > 1 else "")),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("best {task.fields[best]}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
            disable=self.args.no_progress,
        ) as progress:
            shown = f"{self.best:.6g}" if math.isfinite(self.best) else "-"
            task = progress.add_task("search", total=self.shares[0], best=shown)
            self.advance = self._advancer(progress, task)
            try:
                children = start_workers(self.args.parser, self.args, self.shares, self.threads)
                yield
            except BaseException:  # Ctrl-C, SIGTERM or an error: stop the other workers too
                interrupted = True
                raise
            finally:
                self.codes = wait_workers(children, interrupts, interrupted=interrupted)

    def _advancer(self, progress: Progress, task: TaskID) -> Callable[[], None]:
        """Advance the bar with the best score; in a log, a line every 30 s instead."""
        lines = self.args.no_progress or not err_console.is_terminal
        started = last_line = time.monotonic()

        def advance() -> None:
            nonlocal last_line
            progress.update(task, advance=1, best=f"{self.best:.6g}" if math.isfinite(self.best) else "-")
            if lines and time.monotonic() - last_line >= LOG_EVERY_SECONDS:
                last_line = time.monotonic()
                err_console.print(
                    f"search: {len(self.ran)}/{self.shares[0]} trials, best {self.best:.6g} ({last_line - started:.0f} s)",
                    highlight=False,
                )

        return advance

    def on_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Trial callback: count the trial and show it."""
        self.ran.append(trial)
        if trial.state == TrialState.COMPLETE and trial.values and trial.values[0] > self.best:
            self.best = trial.values[0]
        self.advance()


def _report(args: argparse.Namespace, search: OpenSearch, ran: list[optuna.trial.FrozenTrial], codes: list[int]) -> int:
    """The counts, the best students, and one line on failures; the exit status."""
    from ..objectives import failure_summary

    states = [t.state for t in search.study.get_trials(deepcopy=False)]
    console.print(
        f"{states.count(TrialState.COMPLETE)} complete, {states.count(TrialState.FAIL)} failed "
        f"trials in study {search.options.study_name}",
        highlight=False,
    )
    print_top(console, search.study, args.top, storage=args.storage)
    if len(search.study.directions) > 1 and search.completed():
        from ._hints import show_command

        show = show_command(args.storage, search.options.study_name)
        console.print(
            f"{len(search.study.directions)} objectives: no single student is best; see the front with "
            f"{show} --pareto, or the best within a budget with {show} --budget params=1M",
            highlight=False,
            soft_wrap=True,
        )
    summary = failure_summary(ran, sampler=search.config.sampler)
    if summary:
        from . import _flags, name_flags

        summary = name_flags(summary, _flags(args.parser))
    if summary:
        err_console.print(f"[bold red]error:[/bold red] {escape(summary)}", highlight=False, soft_wrap=True)
        return 1
    failed = [(i + 1, c) for i, c in enumerate(codes) if c not in (0, 130, -signal.SIGINT, -signal.SIGTERM)]
    for i, code in failed:
        err_console.print(f"[yellow]worker {i} exited with status {code}[/yellow]", highlight=False)
    return 1 if failed else 0


def best_score(study: optuna.Study) -> float:
    """The highest score of the study's COMPLETE trials (its first objective)."""
    if len(study.directions) == 1:
        best: float = study.best_value
        return best
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return max(float(t.values[0]) for t in trials)
