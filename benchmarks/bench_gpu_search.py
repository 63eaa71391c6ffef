"""S0 candidates/s of ``diswot search --device cuda`` with 1 and N workers on one GPU, in fp32 and
bf16, and the peak GPU memory of each worker process.

``--workers N`` runs N ``diswot search`` processes on the study; each has its own CUDA context
and scores its own candidates, so one worker's forward passes fill the GPU while another does its
bookkeeping (sampler, storage). Every trial scores its student (``--rescore``: S0 has only 64
students, and a known one would otherwise get its stored score without a forward pass).
Candidates/s counts COMPLETE trials from the first trial's start to the last trial's end
(start-up and the teacher's preparation are not counted). The peak GPU memory per worker is the
largest ``used_memory`` that ``nvidia-smi`` reports for any of the worker processes while it runs
(CUDA context included). Without a CUDA GPU every row is printed as not measured and the script succeeds.

    python benchmarks/bench_gpu_search.py                          # fp32 and bf16, 1 and 8 workers
    python benchmarks/bench_gpu_search.py --workers 1,4,8 --trials 2000 --storage journal
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

from diswot.storage import open_storage

sys.path.insert(0, str(Path(__file__).parent))
from _search import search_argv, trials_per_second  # noqa: E402


class GpuMemoryPoll:
    """Poll ``nvidia-smi`` for the memory of each compute process; keep the peak per PID (MiB)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                ).stdout
            except (OSError, subprocess.SubprocessError):
                return
            for line in out.splitlines():
                pid, _, mib = line.partition(",")
                if pid.strip().isdigit() and mib.strip().isdigit():
                    self.peak[int(pid)] = max(self.peak.get(int(pid), 0), int(mib))

    def __enter__(self) -> GpuMemoryPoll:
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def run(url: str, args: argparse.Namespace, precision: str, workers: int) -> dict[str, float | None]:
    study = f"gpu_{precision}_{workers}w"
    cmd = search_argv(
        space="s0",
        teacher=args.teacher,
        batch_size=args.batch_size,
        study=study,
        n_trials=args.trials,
        workers=workers,
        options=["--device", "cuda", "--precision", precision, "--top", "0", "--rescore"],
    )
    with GpuMemoryPoll() as poll:
        subprocess.run(cmd, check=True, env=dict(os.environ, DISWOT_STORAGE=url), stdout=subprocess.DEVNULL)
    trials = optuna.load_study(study_name=study, storage=open_storage(url)).get_trials(
        deepcopy=False, states=(TrialState.COMPLETE,)
    )
    return {
        "trials": len(trials),
        "candidates_per_s": trials_per_second(trials),
        "peak_mib_per_worker": max(poll.peak.values()) if poll.peak else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", default="1,8", help="worker counts (default 1,8)")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--trials", type=int, default=1500, help="trials per run (all workers)")
    p.add_argument("--teacher", default="resnet110")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--storage", choices=("sqlite", "journal"), default="sqlite")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    counts = [int(w) for w in args.workers.split(",") if w]
    precisions = [x for x in args.precisions.split(",") if x]
    print(f"S0 candidates/s on one GPU, teacher {args.teacher}, batch {args.batch_size}, {args.trials} trials per run")
    print("| precision | workers | candidates/s | peak GPU MiB per worker |\n|---|---:|---:|---:|")
    if not torch.cuda.is_available():
        for precision in precisions:
            for w in counts:
                print(f"| {precision} | {w} | not measured (no CUDA GPU) | not measured |")
        return 0
    figures: dict[str, object] = {"gpu": torch.cuda.get_device_name(0)}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in precisions:
            for w in counts:
                path = Path(tmp) / f"{precision}-{w}"
                url = f"sqlite:///{path}.db" if args.storage == "sqlite" else f"journal:///{path}.log"
                r = run(url, args, precision, w)
                figures[f"{precision}-{w}"] = r
                peak = (
                    "not measured (no nvidia-smi)"
                    if r["peak_mib_per_worker"] is None
                    else f"{r['peak_mib_per_worker']:.0f}"
                )
                print(f"| {precision} | {w} | {r['candidates_per_s']:.1f} | {peak} |", flush=True)
    print(f"GPU: {figures['gpu']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
