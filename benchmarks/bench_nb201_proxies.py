"""Reproduce the published NAS-Bench-201 zero-cost-proxy correlations with diswot's proxies.

For the architectures of NASLib's zero-cost file (``tests/data/nb201-zc-proxies-725.json``, see
``tests/data/README.md`` for its provenance) this scores every baseline proxy on one fixed,
seeded batch of real CIFAR test images (``tests/data/cifar/*.npz``) and prints, per dataset:

* ``ours``: Spearman rho of diswot's scores against NASLib's ``val_accuracy``;
* ``naslib``: rho of NASLib's own stored scores on the same architectures;
* ``published``: NAS-Bench-Suite-Zero (1,000 archs) and Abdelfattah et al. 2021 (|rho|, 15,625);
* ``agree``: Spearman rho between diswot's and NASLib's scores, architecture by architecture.

A proxy that fails on an architecture (a :class:`ProxyError`: e.g. ``jacov`` or ``nwot`` on a
cell whose output does not depend on its input) gets the lowest score there, as NASLib's file
stores -1e8 / -inf / 0 for those; the count is shown.

Known differences from NASLib's file (checked, not tuned away):

* NASLib's scores were computed on batches of **32** images (its ``jacov`` is bounded by -32,
  the batch size; ``nwot`` for ``(0, 2, 3, 2, 3, 1)`` is 406.5, ours 405.5 at batch 32 and 806.7
  at 64); this benchmark uses 32 by default to match NASLib (``--batch-size 64`` for Abdelfattah
  et al.'s setting).
* NASLib's ``fisher`` weights each layer by its fan-in (each channel's value is copied to every
  weight of the channel before the sum); ``fisher`` here is the paper's per-channel sum. The
  diagnostic ``--proxies fisher_fanin`` computes NASLib's variant and compares it with NASLib's
  ``fisher`` column (it is not a diswot proxy).
* NASLib's ``flops`` also count pooling and BatchNorm/ReLU element operations; ours count
  convolutions and matrix products (``torch.utils.flop_counter``), as multiply-accumulates.
* NASLib stores ln(synflow); ``synflow`` here is ln(1 + synflow), the same ranking.
* NASLib's networks come from its own data loader (augmented training images) and seeds; the
  probe batch here is drawn from the stored CIFAR test images, so per-arch agreement of the
  data-dependent proxies is below 1 even where the formula is the same.

Example (the full run takes about 80 minutes per dataset on one CPU core; ``--limit`` for a
subset; BENCHMARKS.md has the full-file figures)::

    python benchmarks/bench_nb201_proxies.py --datasets cifar10,cifar100 --limit 100 \\
        --json nb201.json --cache nb201-scores.jsonl
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from diswot.pipeline.errors import ProxyError
from diswot.pipeline.init import INITS, initialise
from diswot.proxies import PROXIES, Batch, finite, get_proxy
from diswot.proxies._gradient import FisherProxy
from diswot.spaces import get_space, naslib_to_nb201

log = logging.getLogger("bench_nb201_proxies")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
ZC_FILE = DATA / "nb201-zc-proxies-725.json"
CIFAR = {
    "cifar10": (
        DATA / "cifar" / "cifar10-test-first1017.npz",
        "labels",
        10,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
    ),
    "cifar100": (
        DATA / "cifar" / "cifar100-test-first916.npz",
        "fine_labels",
        100,
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
    ),
}
BASELINES = (
    "params",
    "flops",
    "synflow",
    "grad_norm",
    "snip",
    "grasp",
    "fisher",
    "jacov",
    "nwot",
    "plain",
    "l2_norm",
    "zen",
)
#: NAS-Bench-Suite-Zero, 1,000 archs, validation accuracy (cifar10, cifar100)
SUITE_ZERO = {
    "nwot": (0.77, 0.80),
    "jacov": (0.75, 0.71),
    "synflow": (0.73, 0.76),
    "params": (0.72, 0.73),
    "flops": (0.69, 0.71),
    "l2_norm": (0.68, 0.72),
    "grad_norm": (0.58, 0.63),
    "snip": (0.58, 0.63),
    "grasp": (0.51, 0.54),
    "fisher": (0.50, 0.54),
    "zen": (0.35, 0.35),
    "plain": (-0.26, -0.21),
}
#: Abdelfattah et al., ICLR 2021, all 15,625 archs, |rho| (cifar10, cifar100)
ABDELFATTAH = {
    "grad_norm": (0.59, 0.64),
    "snip": (0.60, 0.64),
    "grasp": (0.51, 0.55),
    "fisher": (0.36, 0.39),
    "synflow": (0.74, 0.76),
    "jacov": (0.73, 0.70),
}


class FisherFanIn(FisherProxy):
    """Diagnostic only, not a diswot proxy: ``fisher`` computed as NASLib computes it.

    NASLib's ``compute_fisher_per_weight`` copies each channel's Delta_c to every weight of the
    channel (``broadcast_val``) before the sum, so layer l's channels count in_channels * kh * kw
    times. Scored next to ``fisher`` to show where the gap to NASLib's column comes from.
    """

    name = "fisher_fanin"

    def evaluate(self, ctx: Any, student: Any, batch: Batch) -> dict[str, float]:
        """One forward, a backward to the activations; Delta_c weighted by its layer's fan-in."""
        layers = [m for m in student.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        acts: list[tuple[torch.nn.Module, torch.Tensor]] = []
        handles = [m.register_forward_hook(lambda m, _a, out: acts.append((m, out))) for m in layers]
        try:
            with torch.enable_grad():
                for q in student.parameters():
                    q.requires_grad_(True)
                logits = student(batch.images)
                n = logits.shape[0]
                loss = torch.nn.functional.cross_entropy(logits, batch.labels) * n
                live = [(m, a) for m, a in acts if a.requires_grad]
                grads = torch.autograd.grad(loss, [a for _, a in live], allow_unused=True)
        finally:
            for h in handles:
                h.remove()
        score = 0.0
        for (m, a), g in zip(live, grads):
            if g is None:
                continue
            prod = (a.detach() * g).double()
            per_channel = prod.sum(dim=tuple(range(2, prod.dim()))) if prod.dim() > 2 else prod
            fan_in = m.weight[0].numel()  # in_channels/groups * kh * kw, or in_features
            score += float(per_channel.square().sum()) / (2 * n) * fan_in
        return {"score": score}


#: diagnostics scored by this benchmark only, and the NASLib column each is compared with
DIAGNOSTICS = {"fisher_fanin": (FisherFanIn, "fisher")}


def probe_batch(dataset: str, batch_size: int, seed: int) -> Batch:
    """``batch_size`` normalised test images drawn with ``seed`` from the stored CIFAR extract."""
    path, label_key, num_classes, mean, std = CIFAR[dataset]
    with np.load(path) as z:
        images, labels = z["images"], z[label_key]
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:batch_size].numpy()
    x = torch.from_numpy(images[idx]).permute(0, 3, 1, 2).float().div(255.0)
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return Batch(x.contiguous(), torch.from_numpy(labels[idx].astype(np.int64)), num_classes)


def _lowest(values: list[float | None]) -> np.ndarray:
    """Failed / non-finite scores (None, nan, +-inf, NASLib's -1e8) become -inf: ranked last."""
    out = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    out[~np.isfinite(out) | (out <= -1e8)] = -np.inf
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rho with -inf ranked last (ties averaged); nan when one side is constant."""
    if np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(stats.spearmanr(stats.rankdata(a), stats.rankdata(b))[0])


def score_dataset(
    dataset: str,
    keys: list[str],
    proxies: list[str],
    *,
    batch_size: int,
    seed: int,
    init: str,
    device: torch.device,
    cache: Path | None,
) -> tuple[dict[str, dict[str, float | None]], dict[str, float], dict[str, float]]:
    """Scores ``{arch key: {proxy: score or None}}`` and mean wall / CPU seconds per arch per proxy.

    Times cover the archs scored in this run (not those read back from ``cache``).
    """
    done: dict[str, dict[str, float | None]] = {}
    if cache is not None and cache.exists():
        for line in cache.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line being written by a concurrent run
                continue
            if rec["dataset"] == dataset and rec["config"] == [batch_size, seed, init]:
                done.setdefault(rec["arch"], {}).update(rec["scores"])
    batch = probe_batch(dataset, batch_size, seed).to(device)
    space = get_space("nb201")
    objs = {name: DIAGNOSTICS[name][0]() if name in DIAGNOSTICS else get_proxy(name) for name in proxies}
    contexts = {name: p.prepare(None, batch) for name, p in objs.items()}
    seconds = {name: 0.0 for name in proxies}
    cpu = {name: 0.0 for name in proxies}
    timed = {name: 0 for name in proxies}
    scores: dict[str, dict[str, float | None]] = {}
    start = time.perf_counter()
    for i, key in enumerate(keys):
        have = done.get(key, {})
        todo = [p for p in proxies if p not in have]
        row = {p: have[p] for p in proxies if p in have}
        if todo:
            arch = naslib_to_nb201(ast.literal_eval(key))
            torch.manual_seed(seed)
            with device:
                net = initialise(space.build(arch, num_classes=batch.num_classes), init).train()
            for name in todo:
                student = copy.deepcopy(net)
                t0, c0 = time.perf_counter(), time.process_time()
                try:
                    torch.manual_seed(seed)
                    row[name] = finite(name, objs[name].evaluate(contexts[name], student, batch))["score"]
                except ProxyError as exc:
                    log.info("%s %s %s: %s", dataset, key, name, exc)
                    row[name] = None
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                seconds[name] += time.perf_counter() - t0
                cpu[name] += time.process_time() - c0
                timed[name] += 1
            if cache is not None:
                with cache.open("a") as fh:
                    rec = {
                        "dataset": dataset,
                        "config": [batch_size, seed, init],
                        "arch": key,
                        "scores": {p: row[p] for p in todo},
                    }
                    fh.write(json.dumps(rec) + "\n")
        scores[key] = row
        if (i + 1) % 25 == 0 or i + 1 == len(keys):
            log.warning("%s: %d/%d archs, %.0f s", dataset, i + 1, len(keys), time.perf_counter() - start)
    per_arch = {p: (seconds[p] / timed[p] if timed[p] else float("nan")) for p in proxies}
    per_arch_cpu = {p: (cpu[p] / timed[p] if timed[p] else float("nan")) for p in proxies}
    return scores, per_arch, per_arch_cpu


def summarise(
    dataset: str,
    zc: dict[str, Any],
    keys: list[str],
    proxies: list[str],
    scores: dict[str, dict[str, float | None]],
    per_arch: dict[str, float],
    per_arch_cpu: dict[str, float],
) -> dict[str, Any]:
    """The per-proxy comparison figures of one dataset."""
    col = 0 if dataset == "cifar10" else 1
    acc = np.array([zc[k]["val_accuracy"] for k in keys], dtype=float)
    out: dict[str, Any] = {}
    for p in proxies:
        ours_raw = [scores[k].get(p) for k in keys]
        ours = _lowest(ours_raw)
        entry: dict[str, Any] = {
            "n": len(keys),
            "failed": sum(v is None for v in ours_raw),
            "ours": spearman(ours, acc),
            "naslib": None,
            "agree": None,
            "suite_zero": SUITE_ZERO.get(p, (None, None))[col],
            "abdelfattah": ABDELFATTAH.get(p, (None, None))[col],
            "seconds_per_arch": per_arch.get(p),
            "cpu_seconds_per_arch": per_arch_cpu.get(p),
        }
        column = DIAGNOSTICS[p][1] if p in DIAGNOSTICS else p
        if column in zc[keys[0]]:
            theirs = _lowest([zc[k][column]["score"] for k in keys])
            entry["naslib"] = spearman(theirs, acc)
            entry["agree"] = spearman(ours, theirs)
        out[p] = entry
    return out


def _fmt(v: float | None, signed: bool = True) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def render(dataset: str, summary: dict[str, Any]) -> str:
    """A plain-text table of one dataset's figures."""
    head = f"{'proxy':12s} {'ours':>7s} {'naslib':>7s} {'diff':>7s} {'suite0':>7s} {'abdel':>6s} {'agree':>7s} {'fail':>5s} {'s/arch':>7s} {'cpu-s':>6s}"
    lines = [f"== {dataset} (n = {next(iter(summary.values()))['n']}) ==", head, "-" * len(head)]
    for p, e in summary.items():
        diff = None if e["naslib"] is None else e["ours"] - e["naslib"]
        lines.append(
            f"{p:12s} {_fmt(e['ours']):>7s} {_fmt(e['naslib']):>7s} {_fmt(diff):>7s} {_fmt(e['suite_zero']):>7s} "
            f"{_fmt(e['abdelfattah'], False):>6s} {_fmt(e['agree']):>7s} {e['failed']:>5d} {e['seconds_per_arch']:>7.3f} {e['cpu_seconds_per_arch']:>6.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default="cifar10,cifar100", help="comma list of cifar10, cifar100")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N archs of the file")
    ap.add_argument(
        "--proxies",
        default=",".join(BASELINES),
        help="comma list (default: the baselines); fisher_fanin = NASLib's fan-in weighted fisher (diagnostic)",
    )
    ap.add_argument(
        "--batch-size", type=int, default=32, help="probe batch size (32 as NASLib's file; 64 as Abdelfattah et al.)"
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the batch draw and of every network's init")
    ap.add_argument("--init", default="torch", choices=INITS, help="network init (torch = PyTorch default, as NASLib)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--cache", type=Path, default=None, help="JSON-lines file of per-arch scores (resumable)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    proxies = [p.strip() for p in args.proxies.split(",") if p.strip()]
    for d in datasets:
        if d not in CIFAR:
            ap.error(f"unknown dataset {d!r}; valid: {', '.join(CIFAR)}")
    for p in proxies:
        if p in DIAGNOSTICS:
            continue
        if p not in PROXIES:
            ap.error(f"unknown proxy {p!r}; valid: {', '.join(PROXIES.names())}")
        if PROXIES.get(p).needs_teacher:
            ap.error(f"proxy {p!r} needs a teacher; this benchmark scores the teacher-free baselines")
    zc_all = json.loads(ZC_FILE.read_text())
    device = torch.device(args.device)
    report: dict[str, Any] = {
        "config": {
            "batch_size": args.batch_size,
            "seed": args.seed,
            "init": args.init,
            "device": str(device),
            "threads": torch.get_num_threads(),
            "limit": args.limit,
        },
        "datasets": {},
    }
    for d in datasets:
        zc = zc_all[d]
        keys = list(zc)[: args.limit] if args.limit else list(zc)
        scores, per_arch, per_arch_cpu = score_dataset(
            d,
            keys,
            proxies,
            batch_size=args.batch_size,
            seed=args.seed,
            init=args.init,
            device=device,
            cache=args.cache,
        )
        summary = summarise(d, zc, keys, proxies, scores, per_arch, per_arch_cpu)
        report["datasets"][d] = summary
        sys.stdout.write(render(d, summary) + "\n\n")
        sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
