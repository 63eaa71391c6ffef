"""``diswot rank``: rank correlation of proxies against a user's ground-truth CSV."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Hashable, Sequence

import numpy as np
from rich import box
from rich.table import Table

from ..config import DEFAULT_REFERENCE_SIZE
from ._options import Bounded, add_scoring_options, config_from_args
from ..errors import DiswotError
from ._progress import steps
from ._console import console, err_console

if TYPE_CHECKING:  # the scoring side (torch) is imported when the command runs, not when options are parsed
    from ..ranking import GroundTruth, ProxyRanking
    from ..assembly import ScoringSetup

__all__ = ["add_parser", "run"]

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``rank`` sub-command."""
    p = sub.add_parser(
        "rank",
        help="how well proxies rank a ground truth (Kendall, Spearman, Pearson, precision@k)",
        description="Score every architecture of a ground-truth CSV (columns arch,accuracy) with each "
        "proxy and report the rank correlations (DisWOT supplementary A.2), mean ± std over repeats.",
    )
    p.add_argument(
        "--ground-truth",
        required=True,
        metavar="FILE.csv|nb201:DATASET|macro:cifar10|s0:cifar100-kd",
        help="CSV with columns arch,accuracy, NAS-Bench-201's validation accuracy: nb201:cifar10, "
        "nb201:cifar100 or nb201:imagenet16 (needs pip install 'diswot[bench]'), or NAS-Bench-Macro's "
        "CIFAR-10 accuracy (--space macro): macro:cifar10, or the S0 students' CIFAR-100 accuracy distilled from "
        "ResNet-110 (--space s0): s0:cifar100-kd (s0:cifar100-vanilla: trained alone)",
    )
    p.add_argument(
        "--sample",
        type=Bounded(at_least=3, why=" (a ranking needs 3 architectures)"),
        metavar="N",
        help="rank a seeded sample of N architectures (--seed) of the ground truth",
    )
    p.add_argument("--proxies", help="comma-separated proxy names (default: every registered proxy)")
    add_scoring_options(p, leave_out=("proxy",))  # --proxies names the scores
    p.add_argument("--top-k", type=Bounded(at_least=1), help="k of precision@k and best-rank@k (default: the top 10%%)")
    p.add_argument("--json", type=Path, metavar="OUT", help="write the results as JSON")
    p.add_argument(
        "--plot", type=Path, metavar="DIR", help="write one score-vs-accuracy PNG per proxy (needs matplotlib)"
    )
    p.set_defaults(run=run)


def _proxy_names(text: str | None) -> list[str]:
    from diswot.proxies import PROXIES

    known: list[str] = PROXIES.names()
    if text is None:
        return known
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise DiswotError(f"--proxies is empty; known proxies: {', '.join(known)}")
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise DiswotError(f"unknown proxy {', '.join(map(repr, unknown))}; known proxies: {', '.join(known)}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DiswotError(f"--proxies names {', '.join(dupes)} more than once")
    return names


def _supported(names: list[str], space: Any, *, skip: bool) -> list[str]:
    """``names`` without the proxies that refuse ``space`` (said in one line each) when ``skip``;
    otherwise the first refusal is the error. Checked before anything is scored."""
    from diswot.proxies import ProxyError, check_supported, get_proxy

    keep = []
    for name in names:
        try:
            check_supported(get_proxy(name), space, space.default_num_classes, space.image_size)
        except ProxyError as exc:
            if not skip:
                raise
            err_console.print(f"skipped: {exc}", highlight=False)
            continue
        keep.append(name)
    return keep


def _ground_truth(spec: str, space: Any, sample: int | None, seed: int) -> GroundTruth:
    """The CSV file or packaged benchmark ``spec``, or a seeded sample of it."""
    from ..benchmark_truth import benchmark_truth, is_benchmark_spec, sample_indices
    from ..ranking import GroundTruth, load_ground_truth

    if is_benchmark_spec(spec):
        return benchmark_truth(spec, space, sample=sample, seed=seed)
    truth = load_ground_truth(Path(spec), space)
    if sample is None:
        return truth
    keep = sample_indices(len(truth), sample, seed)
    return GroundTruth(
        truth.space,
        tuple(truth.archs[i] for i in keep),
        tuple(truth.names[i] for i in keep),
        truth.accuracy[keep],
        tuple(truth.lines[i] for i in keep),
    )


def _check_plot(directory: Path | None) -> None:
    if directory is None:
        return
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise DiswotError("--plot needs matplotlib: pip install 'diswot[plot]' (or matplotlib)") from None
    if directory.exists() and not directory.is_dir():
        raise DiswotError(f"--plot {str(directory)!r} exists and is not a directory")


def _fmt(metrics: dict[str, float | None], key: str, digits: int = 3) -> str:
    mean, std = metrics.get(key), metrics.get(f"{key}_std")
    if mean is None:
        return "n/a"
    return f"{mean:.{digits}f}\n±{std:.{digits}f}" if std else f"{mean:.{digits}f}"


def _table(results: list[ProxyRanking], truth: GroundTruth, top_k: int, repeats: int) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"{truth.space}: {len(truth)} archs, {repeats} repeat(s), top-k = {top_k}",
        caption=f"mean (±std over repeats); P@{top_k}: share of the true top-{top_k} in the predicted top-{top_k}; "
        f"best@{top_k}: best true rank among the predicted top-{top_k}; regret: mean/max over 10 parameter budgets "
        "of the best accuracy within the budget minus that of the score's best student; s/arch: wall seconds per architecture",
    )
    for col in ("proxy", "Kendall", "Spearman", "Pearson", f"P@{top_k}", f"best@{top_k}", "regret", "fail", "s/arch"):
        table.add_column(
            col,
            justify="left" if col == "proxy" else "right",
            no_wrap=col == "proxy",
            min_width=len(col),
            overflow="fold",
        )
    for res in results:
        m = res.metrics
        table.add_row(
            res.proxy,
            _fmt(m, "kendall"),
            _fmt(m, "spearman"),
            _fmt(m, "pearson"),
            _fmt(m, "precision_at_k", 2),
            _fmt(m, "best_rank_in_top_k", 1),
            "n/a" if m.get("regret_mean") is None else f"{m['regret_mean']:.2f}/{m['regret_max']:.2f}",
            str(len(res.failed)),
            f"{res.seconds / max(len(truth), 1):.3f}",
        )
    return table


def _plot(directory: Path, res: ProxyRanking, truth: GroundTruth) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    xs = [(score, acc) for name, acc in zip(truth.names, truth.accuracy) if (score := res.scores[name]) is not None]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter([x for x, _ in xs], [y for _, y in xs], s=12)
    tau = res.metrics.get("kendall")
    ax.set_title(f"{res.proxy}: Kendall τ = {tau:.3f}" if tau is not None else f"{res.proxy}: τ undefined")
    ax.set_xlabel(f"{res.proxy} score")
    ax.set_ylabel("accuracy")
    fig.tight_layout()
    out = directory / f"{res.proxy}.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _regret(res: ProxyRanking, truth: GroundTruth, params: np.ndarray) -> dict[str, Any] | None:
    """Budget regret of ``res``'s scores (archs that failed left out); stored in its metrics too."""
    from ..ranking import budget_regret

    keep = [i for i, name in enumerate(truth.names) if res.scores[name] is not None]
    if len(keep) < 3:
        res.metrics.update(regret_mean=None, regret_max=None)
        return None
    scores = np.array([res.scores[truth.names[i]] for i in keep], dtype=float)
    regret = budget_regret(scores, truth.accuracy[keep], params[keep])
    res.metrics.update(regret_mean=regret["mean"], regret_max=regret["max"])
    return regret


def _plot_regret(directory: Path, regrets: dict[str, dict[str, Any] | None]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, regret in regrets.items():
        if regret is not None:
            ax.plot([b / 1e6 for b in regret["budgets"]], regret["regret"], marker="o", label=name)
    ax.set_xlabel("parameter budget (M)")
    ax.set_ylabel("regret: best accuracy - pick's accuracy")
    ax.legend(fontsize="small")
    fig.tight_layout()
    out = directory / "regret.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _per_repeat(setup: ScoringSetup) -> Callable[[Hashable], Sequence[float]]:
    """``arch -> its score under each repeat`` with ``setup``'s scorer."""

    def score(arch: Hashable) -> Sequence[float]:
        return setup.scorer.score(arch).per_repeat

    return score


def run(args: argparse.Namespace) -> int:
    """Score the ground truth with every proxy and report the rank correlations."""
    from diswot.spaces import get_space

    from ..ranking import METRICS, default_top_k, rank_proxy
    from ..assembly import attach_reference, make_scoring

    space = get_space(args.space)  # UnknownNameError lists the spaces
    proxies = _supported(_proxy_names(args.proxies), space, skip=args.proxies is None)
    _check_plot(args.plot)
    truth = _ground_truth(args.ground_truth, space, args.sample, args.seed)
    if args.top_k is not None and args.top_k < 1:
        raise DiswotError(f"--top-k must be >= 1, got {args.top_k}")
    top_k = min(args.top_k or default_top_k(len(truth)), len(truth))
    base = replace(config_from_args(args), proxy=proxies[0])
    results: list[ProxyRanking] = []
    for i, name in enumerate(proxies, 1):  # a bar per step on a terminal, a line every 30 s in a log
        setup = make_scoring(replace(base, proxy=name))
        if setup.scorer.proxy.reference_terms:
            with steps(
                err_console, f"{name}: reference sample", base.reference_size or DEFAULT_REFERENCE_SIZE
            ) as advance:
                attach_reference(setup, on_arch=advance)
        with steps(err_console, f"scoring {name} ({i}/{len(proxies)})", len(truth)) as advance:
            results.append(rank_proxy(name, truth, _per_repeat(setup), top_k=top_k, on_arch=advance))
    params = np.array([space.count_params(a, setup.num_classes) for a in truth.archs], dtype=float)
    regrets = {r.proxy: _regret(r, truth, params) for r in results}
    console.print(_table(results, truth, top_k, args.repeats))
    if args.json:
        doc: dict[str, Any] = {
            "space": space.name,
            "n": len(truth),
            "ground_truth": str(args.ground_truth),
            "dataset": args.dataset,
            "teacher": args.teacher,
            "seed": args.seed,
            "repeats": args.repeats,
            "top_k": top_k,
            "metrics": list(METRICS),
            "proxies": {r.proxy: r.to_json(top_k, args.repeats) for r in results},
        }
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(doc, indent=2) + "\n")
        except OSError as exc:
            raise DiswotError(f"cannot write --json {str(args.json)!r}: {exc}") from None
        console.print(f"wrote {args.json}")
    if args.plot:
        for res in results:
            _plot(args.plot, res, truth)
        _plot_regret(args.plot, regrets)
        console.print(f"wrote {len(results) + 1} plot(s) to {args.plot}")
    return 0
