"""``diswot rank``: rank correlation of proxies against a user's ground-truth CSV."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.table import Table

from ._options import Bounded, add_progress_option, add_scoring_options, config_from_args
from ..errors import DiswotError
from ._progress import steps
from ._console import console, err_console

if TYPE_CHECKING:  # the scoring side (torch) is imported when the command runs, not when options are parsed
    from ..ranking import GroundTruth, ProxyRanking

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
    p.add_argument(
        "--bootstrap",
        type=Bounded(at_least=1),
        metavar="N",
        help="resample the students N times, the same resample for every proxy: each Kendall tau's 5-95%% "
        "interval, and how often the proxy ranks above both params and flops (name them in --proxies)",
    )
    p.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="OUT",
        help="print the results as JSON instead of a table (as score and show do); with OUT, write them to that "
        "file beside the table",
    )
    add_progress_option(p)
    p.add_argument(
        "--plot", type=Path, metavar="DIR", help="write one score-vs-accuracy PNG per proxy (needs matplotlib)"
    )
    p.set_defaults(run=run)


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    """``doc`` as indented JSON in ``path`` (its folder made); a failure is one line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2) + "\n")
    except OSError as exc:
        raise DiswotError(f"cannot write --json {str(path)!r}: {exc}") from None


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


#: the widest cell of a column whose cells can be wider than its header ("10.41/12.50", "-0.616..-0.448", "0.86")
_WIDTHS = {"regret": 11, "tau 5-95%": 14, "P": 4}


def _boot_cells(boot: dict[str, Any] | None) -> list[str]:
    if boot is None:
        return []
    lo, hi, beats = boot["kendall_lo"], boot["kendall_hi"], boot["beats_size"]
    return ["n/a" if lo is None else f"{lo:.3f}..{hi:.3f}", "-" if beats is None else f"{beats:.2f}"]


def _table(
    results: list[ProxyRanking], truth: GroundTruth, top_k: int, repeats: int, bootstrap: dict[str, Any]
) -> Table:
    caption = (
        f"mean (±std over repeats); P@{top_k}: share of the true top-{top_k} in the predicted top-{top_k}; "
        f"best@{top_k}: best true rank among the predicted top-{top_k}; regret: mean/max over 10 parameter budgets "
        "of the best accuracy within the budget minus that of the score's best student; s/arch: wall seconds per architecture"
    )
    if bootstrap:
        caption += (
            "; tau 5-95%: Kendall over resamples of the students; > size: share of resamples in which the "
            "proxy's tau is above those of params and flops (those present)"
        )
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"{truth.space}: {len(truth)} archs, {repeats} repeat(s), top-k = {top_k}",
        caption=caption,
    )
    columns = ["proxy", "Kendall", "Spearman", "Pearson", f"P@{top_k}", f"best@{top_k}", "regret", "fail", "s/arch"]
    if bootstrap:
        columns[2:2] = ["tau 5-95%", "> size"]
    for col in columns:
        table.add_column(
            col,
            justify="left" if col == "proxy" else "right",
            no_wrap=col == "proxy",
            min_width=max(len(col), _WIDTHS.get(col.split("@")[0], 0)),
            overflow="fold",
        )
    for res in results:
        m = res.metrics
        table.add_row(
            res.proxy,
            _fmt(m, "kendall"),
            *_boot_cells(bootstrap.get(res.proxy) if bootstrap else None),
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


def run(args: argparse.Namespace) -> int:
    """Score the ground truth with every proxy and report the rank correlations."""
    from diswot.spaces import get_space

    from ..evaluation import proxy_names, rank
    from ..ranking import METRICS

    get_space(args.space)  # UnknownNameError lists the spaces
    proxy_names(args.proxies)  # an unknown proxy is refused before the plot folder is checked
    _check_plot(args.plot)
    report = rank(
        args.ground_truth,
        config=config_from_args(args),
        proxies=args.proxies,
        sample=args.sample,
        top_k=args.top_k,
        progress=lambda label, total: steps(err_console, label, total, bar=not args.no_progress),  # progress: stderr
        bootstrap=args.bootstrap or 0,
    )
    for reason in report.skipped:
        err_console.print(f"skipped: {reason}", highlight=False)
    results, truth, top_k = report.results, report.truth, report.top_k
    to_stdout = args.json == "-"
    if not to_stdout:
        console.print(_table(results, truth, top_k, args.repeats, report.bootstrap))
    if args.json:
        doc: dict[str, Any] = {
            "space": truth.space,
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
        if report.bootstrap:
            doc["bootstrap"] = {"resamples": args.bootstrap, "seed": args.seed, "proxies": report.bootstrap}
        if to_stdout:
            console.print_json(json.dumps(doc))
        else:
            _write_json(Path(args.json), doc)
            console.print(f"wrote {args.json}")
    if args.plot:
        for res in results:
            _plot(args.plot, res, truth)
        _plot_regret(args.plot, report.regrets)
        # with the JSON on stdout, what was written goes to stderr
        (err_console if to_stdout else console).print(f"wrote {len(results) + 1} plot(s) to {args.plot}")
    return 0
