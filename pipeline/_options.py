"""Shared CLI options: scoring, storage (with $DISWOT_STORAGE) and artifact folders, declared once."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from diswot.storage import DEFAULT_STORAGE

from .config import DEFAULT_PROXY, DEFAULT_REFERENCE_SIZE
from .data import DATASETS
from .init import INITS

__all__ = [
    "STORAGE_ENV",
    "add_artifact_dir_option",
    "add_scoring_options",
    "add_storage_option",
    "add_storage_options",
    "default_artifact_dir",
    "storage_url",
]

#: the environment variable every ``--storage`` defaults to (keeps a password off command lines)
STORAGE_ENV = "DISWOT_STORAGE"


def add_scoring_options(p: argparse.ArgumentParser) -> None:
    """Options that decide a score: space, teacher, data, seed, batch, repeats, proxy, device."""
    g = p.add_argument_group("scoring")
    g.add_argument("--space", required=True, help="search space: s0, nb201, s2-cifar, s2-imagenet")
    g.add_argument("--teacher", default="resnet110", help="teacher name, or nb201:<arch string> (default resnet110)")
    g.add_argument("--teacher-weights", metavar="PATH", help="teacher checkpoint (loaded with weights_only=True)")
    g.add_argument("--dataset", default="cifar100", choices=DATASETS, help="probe data (default cifar100)")
    g.add_argument("--data-dir", metavar="DIR", help="where the dataset lives (default ./data)")
    g.add_argument("--num-classes", type=int, help="classes for synthetic data (default: the space's)")
    g.add_argument("--image-size", type=int, help="probe image size (default: the dataset's or space's)")
    g.add_argument("--seed", type=int, default=0, help="seed of the probe batch, inits and sampler (default 0)")
    g.add_argument("--batch-size", type=int, default=64, help="probe batch size (default 64)")
    g.add_argument("--repeats", type=int, default=1, help="mean over K seeds and batches (default 1)")
    g.add_argument(
        "--proxy",
        help=f"score to use (default {DEFAULT_PROXY}, or the score a resumed study was made with; "
        "diswot is the paper's exact formula; see README: Which score?)",
    )
    g.add_argument(
        "--reference-size",
        type=int,
        help=f"architectures in the reference sample of a rank-aggregated score such as {DEFAULT_PROXY} "
        f"(default {DEFAULT_REFERENCE_SIZE}; scored once per study)",
    )
    g.add_argument("--init", default="gaussian", choices=INITS, help="random Gaussian init of teacher/student (default gaussian, see README)")
    g.add_argument(
        "--semantic",
        default="auto",
        choices=("auto", "channel", "class"),
        help="semantic term: channel-wise (Listing 1, equal widths) or class-wise; auto picks per study",
    )
    g.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    g.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "tf32", "bf16"),
        help="scoring precision: fp32 (default), tf32 (CUDA) or bf16 autocast; see BENCHMARKS.md for rank agreement",
    )


def storage_url(url: str | None = None) -> str:
    """``url``, else ``$DISWOT_STORAGE``, else the default SQLite file: where a study is kept."""
    return url or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE


def add_storage_option(p: argparse.ArgumentParser, *, what: str = "storage URL", hint: str = "") -> None:
    """``--storage``, defaulting to ``$DISWOT_STORAGE`` (read when the parser is built), else SQLite."""
    p.add_argument(
        "--storage",
        default=storage_url(),
        help=f"{what} (default ${STORAGE_ENV} or {DEFAULT_STORAGE}){hint}",
    )


def add_storage_options(p: argparse.ArgumentParser, *, study_required: bool = False, hint: str = "") -> None:
    """``--storage`` and ``--study``."""
    add_storage_option(p, hint=hint)
    p.add_argument("--study", required=study_required, default=None if study_required else "diswot", help="study name")


def default_artifact_dir(storage_url: str) -> Path:
    """Where ``distill`` puts and ``dashboard`` finds artifacts: ``<SQLite file's folder>/artifacts``, else ``./artifacts``."""
    if storage_url.startswith("sqlite:"):
        from sqlalchemy.engine import make_url

        database = make_url(storage_url).database
        if database and database != ":memory:":
            return Path(database).expanduser().resolve().parent / "artifacts"
    return Path("artifacts").resolve()


def add_artifact_dir_option(p: argparse.ArgumentParser, *, what: str) -> None:
    """``--artifact-dir``: the Optuna FileSystemArtifactStore folder, by default next to the storage."""
    p.add_argument(
        "--artifact-dir",
        metavar="DIR",
        help=f"folder of Optuna artifacts, {what} (default: <SQLite file's folder>/artifacts, ./artifacts for other storages)",
    )
