"""Per-candidate scoring cost: the fast path against the naive pattern and one forward pass.

For each setting the same students (taken from a real search of that space) are scored
1. by the search's scorer (teacher side once per study, student in inference mode, closed-form
   FC gradient, FLOPs from hooks) -- ``fast``;
2. by the naive pattern (teacher forward+backward again, full backward through the student, the
   listings literally) -- ``naive``;
3. by one bare student forward pass (build+init excluded) -- ``fwd``, the floor.
It prints ms per candidate and the ratios naive/fast and fast/fwd, the peak memory of
S2-ImageNet candidates (224 px, batch 64), and optionally an end-to-end S1 search.

    python benchmarks/bench_scoring.py                       # all settings, CPU
    python benchmarks/bench_scoring.py --settings s0 --students 20
    python benchmarks/bench_scoring.py --settings "" --memory-students 0 --e2e-trials 5000 --e2e-workers 2
        # + a 5,000-trial S1 search through the CLI
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch

from diswot.pipeline.config import SearchConfig
from diswot.pipeline.init import initialise
from diswot.pipeline.teachers import build_teacher
from diswot.proxies._diswot import naive_diswot
from diswot.pipeline.assembly import make_sampler, make_scoring
from diswot.pipeline.objectives import TRIAL_ERRORS, SearchObjective

sys.path.insert(0, str(Path(__file__).parent))
from _search import search_argv  # noqa: E402

NB201_BEST_CIFAR100 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
SETTINGS = {
    "s0": dict(space="s0", teacher="resnet110"),
    "nb201": dict(space="nb201", teacher=f"nb201:{NB201_BEST_CIFAR100}"),
    "s2-cifar": dict(space="s2-cifar", teacher="resnet56", max_params=1_000_000),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def search_students(config: SearchConfig, n: int) -> tuple[object, list[object]]:
    """Run a real (in-memory) search of ``n`` trials; return the setup and its students."""
    setup = make_scoring(config)
    sampler = make_sampler(
        "evolution", space=setup.space, limits=setup.limits, num_classes=setup.num_classes, seed=config.seed
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(SearchObjective(setup), n_trials=n, catch=TRIAL_ERRORS)
    space = setup.space
    archs = [space.from_params(t.params) for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))]
    return setup, archs


def time_setting(name: str, students: int, batch: int, device: str, naive_students: int) -> dict[str, float]:
    """ms per candidate for fast, naive and a bare forward, on the same students."""
    config = SearchConfig(dataset="synthetic", batch_size=batch, device=device, proxy="diswot", **SETTINGS[name])
    setup, archs = search_students(config, students)
    scorer, dev = setup.scorer, setup.scorer.device
    batch0 = scorer.batches[0]
    fast, fwd, naive = [], [], []
    torch.manual_seed(scorer.seed * 1000 + 1)
    teacher = initialise(build_teacher(config.teacher, setup.num_classes).to(dev).train(), config.init)
    for i, arch in enumerate(archs):
        _sync(dev)
        t = time.perf_counter()
        scorer.score(arch)
        _sync(dev)
        fast.append(time.perf_counter() - t)
        net = scorer.build(arch)
        with torch.inference_mode():
            net.forward_all(batch0.images)  # warm
            _sync(dev)
            t = time.perf_counter()
            net.forward_all(batch0.images)
            _sync(dev)
            fwd.append(time.perf_counter() - t)
        if i < naive_students:
            _sync(dev)
            t = time.perf_counter()
            student = scorer.build(arch)
            naive_diswot(teacher, student, batch0, semantic=setup.semantic)
            _sync(dev)
            naive.append(time.perf_counter() - t)
    k = len(naive)
    return {
        "students": len(archs),
        "fast_ms": 1000 * statistics.mean(fast),
        "fwd_ms": 1000 * statistics.mean(fwd),
        "naive_ms": 1000 * statistics.mean(naive),
        "naive_over_fast": statistics.mean(naive) / statistics.mean(fast[:k]),
        "fast_over_fwd": statistics.mean(fast) / statistics.mean(fwd),
    }


def peak_memory_s2_imagenet(students: int, batch: int, device: str) -> dict[str, float]:
    """Peak RSS (and CUDA peak) while scoring S2-ImageNet candidates at 224 px."""
    config = SearchConfig(
        space="s2-imagenet", teacher="resnet34", dataset="synthetic", batch_size=batch, device=device, proxy="diswot"
    )
    if torch.cuda.is_available() and device != "cpu":
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    setup, archs = search_students(config, students)
    out = {
        "students": len(archs),
        "s_per_candidate": (time.perf_counter() - t) / max(1, students),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if torch.cuda.is_available() and device != "cpu":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def end_to_end(trials: int, batch: int, device: str, workers: int, storage: str | None) -> dict[str, object]:
    """Time a real ``diswot search`` of ``trials`` S1 trials (the CLI, in a subprocess) on SQLite.

    trials/s is given over the whole command (interpreter start, teacher, every worker) and per
    block of 1,000 trials (first start to last completion in the block), to show that it stays flat.
    """
    with tempfile.TemporaryDirectory() as tmp:
        url = storage or f"sqlite:///{Path(tmp) / 'e2e.db'}"
        cmd = search_argv(
            space="nb201",
            teacher=SETTINGS["nb201"]["teacher"],
            batch_size=batch,
            study="e2e-s1",
            n_trials=trials,
            workers=workers,
            options=["--device", device, "--storage", url],
        )
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        study = optuna.load_study(study_name="e2e-s1", storage=url)
        done = sorted(study.get_trials(deepcopy=False), key=lambda tr: tr.number)
    states: dict[str, int] = {}
    for tr in done:
        states[tr.state.name] = states.get(tr.state.name, 0) + 1
    blocks, scoring, rest, mflops = [], [], [], []
    for i in range(0, len(done), 1000):
        block = [tr for tr in done[i : i + 1000] if tr.datetime_start and tr.datetime_complete]
        if len(block) > 1:
            span = (max(tr.datetime_complete for tr in block) - min(tr.datetime_start for tr in block)).total_seconds()
            blocks.append(len(block) / span)
            score_ms = 1000 * statistics.fmean(tr.user_attrs.get("score_seconds", 0.0) for tr in block)
            scoring.append(score_ms)
            rest.append(1000 * span / len(block) - score_ms)
            mflops.append(statistics.fmean(tr.user_attrs.get("flops", 0) for tr in block) / 1e6)
    return {
        "trials": len(done),
        "workers": workers,
        "states": states,
        "wall_s": wall,
        "trials_per_s": len(done) / wall,
        "block_trials_per_s": blocks,
        # per block: mean scoring ms, the rest of each trial's wall time (sampler, storage,
        # notes, between trials) and the students' mean MFLOPs, which the scoring time follows
        "block_scoring_ms": scoring,
        "block_rest_ms": rest,
        "block_mflops": mflops,
    }


def main() -> None:
    """Run the selected measurements and print them side by side."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--settings", default="s0,nb201,s2-cifar")
    p.add_argument("--students", type=int, default=20, help="students per setting, from a real search")
    p.add_argument("--naive-students", type=int, default=10, help="of which this many are also scored naively")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--memory-students", type=int, default=5, help="S2-ImageNet candidates for peak memory (0: skip)")
    p.add_argument("--e2e-trials", type=int, default=0, help="trials of an end-to-end S1 search (0: skip)")
    p.add_argument("--e2e-workers", type=int, default=1, help="--workers of the end-to-end search")
    p.add_argument("--e2e-storage", help="storage URL of the end-to-end search (default: a temporary SQLite file)")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    figures: dict[str, object] = {"device": args.device, "threads": torch.get_num_threads(), "torch": torch.__version__}
    print(f"device {args.device}, {torch.get_num_threads()} threads, batch {args.batch_size}", flush=True)
    print(
        f"{'setting':<10} {'students':>8} {'fast ms':>9} {'fwd ms':>9} {'naive ms':>9} {'naive/fast':>11} {'fast/fwd':>9}"
    )
    for name in filter(None, args.settings.split(",")):
        r = time_setting(name, args.students, args.batch_size, args.device, args.naive_students)
        figures[name] = r
        print(
            f"{name:<10} {r['students']:>8} {r['fast_ms']:>9.1f} {r['fwd_ms']:>9.1f} {r['naive_ms']:>9.1f} "
            f"{r['naive_over_fast']:>10.1f}x {r['fast_over_fwd']:>8.2f}x",
            flush=True,
        )
    if args.memory_students:
        m = peak_memory_s2_imagenet(args.memory_students, args.batch_size, args.device)
        figures["s2-imagenet-memory"] = m
        print(
            f"S2-ImageNet 224px batch {args.batch_size}: {m['students']} candidates, {m['s_per_candidate']:.2f} s each, "
            f"peak RSS {m['peak_rss_mib']:.0f} MiB"
            + (f", CUDA peak {m['cuda_peak_mib']:.0f} MiB" if "cuda_peak_mib" in m else ""),
            flush=True,
        )
    if args.e2e_trials:
        e = end_to_end(args.e2e_trials, args.batch_size, args.device, args.e2e_workers, args.e2e_storage)
        figures["e2e-s1"] = e

        def row(key: str, fmt: str) -> str:
            return ", ".join(format(b, fmt) for b in e[key])  # type: ignore[union-attr]

        print(
            f"end to end: diswot search, {e['trials']} S1 trials ({e['states']}), {e['workers']} worker(s), SQLite: "
            f"{e['wall_s']:.0f} s wall = {e['trials_per_s']:.2f} trials/s\n"
            f"  per 1,000 trials: {row('block_trials_per_s', '.2f')} trials/s\n"
            f"  scoring ms per trial: {row('block_scoring_ms', '.1f')} (students' MFLOPs: {row('block_mflops', '.1f')})\n"
            f"  rest of each trial, ms (sampler, storage, notes; workers overlap): {row('block_rest_ms', '.1f')}",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    sys.exit(main())
