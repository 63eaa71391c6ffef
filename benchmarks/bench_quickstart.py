"""Where the README's quick-start search spends its wall time: start-up, reference sample, trials, pick.

Runs the quick-start command (``diswot search --space nb201 --teacher resnet56 --dataset synthetic
--n-trials 200 --max-params 500K`` unless ``--args`` says otherwise) as a user does, a new process in a new folder, on
the embedded SQLite default, ``--runs`` times. Each line the search writes to stderr is stamped on
arrival; the phases are read from those lines and from the study:

- start-up: from the process start to the reference sample's first line (imports, teacher, probe
  batch, the study's creation);
- reference sample: to the line saying it is done;
- trials: from the first trial's start to the last trial's end (the study's own timestamps);
- pick: from the pick's first line to the line saying its re-scoring is done;
- the rest: everything else (between the phases, the final table, the exit).

Each phase is printed in seconds and as a share of the run's wall time; the median run decides.

``--pick-sides N`` adds the pick's set-up in this process, N times each, alternating: the pick's
scorer (the study's, with ``--pick-repeats`` probe batches) built with the teacher sides the study
has already prepared handed over, against the same scorer preparing every repeat itself.

    python benchmarks/bench_quickstart.py --runs 3 --json benchmarks/results/quickstart-split-nb201.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import IO

import optuna
from optuna.trial import TrialState

QUICK_START = "search --space nb201 --teacher resnet56 --dataset synthetic --n-trials 200 --max-params 500K"
PHASES = ("start-up", "reference sample", "trials", "pick", "rest")


def _stamped_lines(stream: IO[str], out: list[tuple[float, str]]) -> None:
    for line in stream:
        out.append((time.time(), line.rstrip("\n")))


def _first(lines: list[tuple[float, str]], *needles: str) -> float | None:
    for stamp, text in lines:
        if all(n in text for n in needles):
            return stamp
    return None


def one_run(args: list[str]) -> dict[str, float]:
    """One quick-start search in a new folder: its phases in seconds, and ``wall``."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.time()
        proc = subprocess.Popen(
            [sys.executable, "-m", "diswot.pipeline.cli", *args, "--no-progress"],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[tuple[float, str]] = []
        assert proc.stderr is not None
        reader = threading.Thread(target=_stamped_lines, args=(proc.stderr, lines))
        reader.start()
        code = proc.wait()
        end = time.time()
        reader.join()
        if code != 0:
            raise SystemExit("the search failed:\n" + "\n".join(text for _, text in lines[-10:]))
        study = optuna.load_study(study_name="diswot", storage=f"sqlite:///{Path(folder) / 'diswot.db'}")
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    first = min(_epoch(t.datetime_start) for t in trials)
    last = max(_epoch(t.datetime_complete) for t in trials)
    ref_start = _first(lines, "reference sample of") or start
    ref_end = _first(lines, "reference sample:", "done") or ref_start
    pick_start = _first(lines, "the pick:")
    pick_end = _first(lines, "the pick:", "done") or pick_start
    phases = {
        "start-up": ref_start - start,
        "reference sample": ref_end - ref_start,
        "trials": last - first,
        "pick": (pick_end - pick_start) if pick_start is not None and pick_end is not None else 0.0,
    }
    phases["rest"] = (end - start) - sum(phases.values())
    phases["wall"] = end - start
    phases["trials_run"] = float(len(trials))
    return phases


def pick_setup_seconds(times: int) -> dict[str, float]:
    """Median seconds of the pick's scorer set-up for the quick start's study: with the study's
    prepared teacher sides handed over, and preparing every repeat (alternating, ``times`` each)."""
    from dataclasses import replace

    from diswot.pipeline import SearchConfig
    from diswot.pipeline.assembly import make_scoring
    from diswot.pipeline.config import DEFAULT_PICK_REPEATS

    study = make_scoring(SearchConfig(space="s0", teacher="resnet110", dataset="synthetic"))
    more = replace(study.config, repeats=DEFAULT_PICK_REPEATS)
    reference = study.scorer.reference  # the study's reference sample, scored here once
    handed, alone = [], []
    for _ in range(times):
        start = time.perf_counter()
        assert (
            len(make_scoring(more, reference=reference, contexts=study.scorer.prepared()).scorer.contexts)
            == DEFAULT_PICK_REPEATS
        )
        handed.append(time.perf_counter() - start)
        start = time.perf_counter()
        assert len(make_scoring(more, reference=reference).scorer.contexts) == DEFAULT_PICK_REPEATS
        alone.append(time.perf_counter() - start)
    return {"handed_over": statistics.median(handed), "every_repeat": statistics.median(alone)}


def _epoch(moment: datetime | None) -> float:
    if moment is None:
        raise SystemExit("a COMPLETE trial without its timestamps")
    return moment.timestamp()


def _print_split(args: str, runs: list[dict[str, float]], median: dict[str, float]) -> None:
    print(f"diswot {args}: {len(runs)} runs")
    head = "".join(f"{'run ' + str(i + 1):>10}" for i in range(len(runs)))
    print(f"{'phase':<18}{head}{'median':>10}{'share':>8}")
    for phase in (*PHASES, "wall"):
        cells = "".join(f"{r[phase]:>9.2f}s" for r in runs)
        share = f"{median[phase] / median['wall']:>7.0%}" if phase != "wall" else ""
        print(f"{phase:<18}{cells}{median[phase]:>9.2f}s {share}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--args", default=QUICK_START, help=f"the diswot command line (default: {QUICK_START!r})")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--pick-sides", type=int, default=0, help="time the pick's scorer set-up N times each way")
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    runs = [one_run(shlex.split(a.args)) for _ in range(a.runs)]
    median = {k: statistics.median(r[k] for r in runs) for k in (*PHASES, "wall")} if runs else {}
    if runs:
        _print_split(a.args, runs, median)
    out = {"command": "diswot " + a.args, "runs": runs, "median": median}
    if a.pick_sides:
        sides = out["pick_setup"] = pick_setup_seconds(a.pick_sides)
        print(
            f"the pick's scorer set-up ({a.pick_sides} times each, median): {sides['handed_over']:.2f} s with the "
            f"study's teacher sides handed over, {sides['every_repeat']:.2f} s preparing every repeat "
            f"({sides['handed_over'] / sides['every_repeat']:.2f}x)"
        )
    if a.json:
        a.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
