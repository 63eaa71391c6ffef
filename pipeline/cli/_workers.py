"""Local worker processes of ``diswot search --workers N`` and their clean stop on Ctrl-C.

Worker 0 is the ``diswot search`` process itself; workers 1..N-1 are ``diswot search``
subprocesses with the same options, their own ``--worker-index`` (hence sampler seed) and share of
``--n-trials``. The storage URL reaches them through :data:`STORAGE_ENV`, never their command
line, so ``ps`` does not show its password.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Iterable

from diswot.storage import STORAGE_ENV

from ..worker import Interrupts

__all__ = [
    "local_workers",
    "sigterm_as_interrupt",
    "split_trials",
    "start_workers",
    "usable_cores",
    "wait_workers",
    "worker_argv",
]


#: options a worker subprocess gets from its parent's values, not copied
_WORKER_OWN = {"help", "storage", "workers", "worker_index", "n_trials", "no_progress", "top", "child"}


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity: ``taskset``, a container's cpuset)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def local_workers(requested: int, device: str) -> int:
    """The worker processes ``--workers requested`` runs on this host: on a GPU all of them (one
    worker's forward passes run while another does its bookkeeping); on the CPU at most one per
    core, since more only time-share the cores and finish later (BENCHMARKS.md, "Many workers")."""
    if device == "cpu" or device == "auto":
        import torch

        if device == "cpu" or not torch.cuda.is_available():
            return max(1, min(requested, usable_cores()))
    return requested


def split_trials(n_trials: int, workers: int) -> list[int]:
    """``n_trials`` split as evenly as possible between at most ``workers`` workers (none get 0)."""
    workers = max(1, min(workers, n_trials))
    return [n_trials // workers + (i < n_trials % workers) for i in range(workers)]


def worker_argv(parser: argparse.ArgumentParser, args: argparse.Namespace, index: int, n_trials: int) -> list[str]:
    """The command line of worker ``index``: the options of ``args`` that differ from ``parser``'s
    defaults (never the storage URL: workers get it from :data:`STORAGE_ENV`), its index and share.
    """
    argv = [sys.executable, "-m", "diswot.pipeline.cli", *(["-v"] * args.verbose), "search"]
    argv += given_options(parser, args, _WORKER_OWN)
    argv += ["--worker-index", str(index), "--n-trials", str(n_trials), "--no-progress", "--child"]
    return argv


def given_options(
    parser: argparse.ArgumentParser, args: argparse.Namespace, leave_out: Iterable[str] = ()
) -> list[str]:
    """The options of ``args`` that differ from ``parser``'s defaults, as command-line words (the
    destinations in ``leave_out`` and hidden aliases left out)."""
    argv: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.dest in leave_out or action.help == argparse.SUPPRESS:
            continue  # a hidden alias's value goes under the option it stands for
        value = getattr(args, action.dest, action.default)
        if value == action.default or value is None:
            continue
        opt = action.option_strings[-1]
        if isinstance(action, argparse._StoreTrueAction):
            argv.append(opt)
        elif isinstance(action, argparse._AppendAction):
            for item in value:
                argv += [opt, str(item)]
        else:
            argv += [opt, str(value)]
    return argv


def start_workers(
    parser: argparse.ArgumentParser, args: argparse.Namespace, shares: list[int], threads: int | None
) -> list[subprocess.Popen[bytes]]:
    """Start workers 1..N-1 (``shares[i]`` trials each) as ``diswot search`` subprocesses."""
    env = dict(os.environ, **{STORAGE_ENV: args.storage})
    if threads is not None:
        env.setdefault("OMP_NUM_THREADS", str(threads))
    return [subprocess.Popen(worker_argv(parser, args, i, n), env=env) for i, n in enumerate(shares) if i > 0]


def wait_workers(children: list[subprocess.Popen[bytes]], interrupts: Interrupts, *, interrupted: bool) -> list[int]:
    """Wait for the worker subprocesses; forward an interrupt to them.

    SIGTERM first: a worker in a trial fails it cleanly (its handler treats SIGTERM as Ctrl-C, and
    a repeat of a terminal's Ctrl-C is ignored once), a worker still starting just ends. Then, every
    30 s, SIGTERM again (which a worker obeys at once) and SIGKILL.
    """
    forwarded_at: float | None = None
    escalation = [signal.SIGTERM, signal.SIGTERM, signal.SIGKILL]
    while any(c.poll() is None for c in children):
        if (interrupted or interrupts.interrupted) and (forwarded_at is None or time.monotonic() - forwarded_at > 30):
            sig = escalation.pop(0) if escalation else signal.SIGKILL
            for c in children:
                if c.poll() is None:
                    c.send_signal(sig)
            forwarded_at = time.monotonic()
        time.sleep(0.2)
    return [c.returncode for c in children]


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def sigterm_as_interrupt() -> None:
    """Make SIGTERM (``docker stop``, Kubernetes) stop the process like Ctrl-C (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
