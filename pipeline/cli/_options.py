"""The options several commands share, each declared once: scoring (``search``, ``score``,
``rank``), storage (with ``$DISWOT_STORAGE``) and artifact folders; and :func:`config_from_args`,
the parsed options as a :class:`~diswot.pipeline.config.SearchConfig`.

The choice lists come from the torch-free :mod:`diswot.pipeline._choices` (datasets, inits,
precisions, semantic forms) and :mod:`diswot.pipeline.config` (samplers), and the defaults from
``SearchConfig``, so argparse, the config and the scorer agree.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Mapping

from diswot.storage import DEFAULT_STORAGE, STORAGE_ENV, default_artifact_dir, storage_url

from .._choices import DATASETS, DEFAULT_INIT_DRAW, INIT_DRAWS, INITS, PRECISIONS, SEMANTIC_MODES, SPACES
from ..config import DEFAULT_PROXY, DEFAULT_REFERENCE_SIZE, SearchConfig, WorkerOptions, parse_objectives
from ..errors import DiswotError

__all__ = [
    "DEFAULT",
    "SCORING_OPTIONS",
    "WORKER_DEFAULT",
    "TEACHER_OPTIONS",
    "Bounded",
    "STORAGE_ENV",
    "Option",
    "add_artifact_dir_option",
    "add_listen_options",
    "add_progress_option",
    "add_scoring_options",
    "add_storage_option",
    "add_storage_options",
    "add_teacher_options",
    "add_top_option",
    "config_from_args",
    "default_artifact_dir",
    "storage_url",
]


#: SearchConfig's defaults: the defaults of the scoring and search options
DEFAULT: dict[str, Any] = {f.name: f.default for f in fields(SearchConfig)}
_DEFAULT = DEFAULT
#: WorkerOptions' defaults: the defaults of the worker options
WORKER_DEFAULT: dict[str, Any] = {f.name: f.default for f in fields(WorkerOptions)}


@dataclass(frozen=True)
class Option:
    """One command-line option: its flags and ``argparse.add_argument``'s keywords."""

    flags: tuple[str, ...]
    kwargs: Mapping[str, Any]

    @property
    def dest(self) -> str:
        return self.flags[0].lstrip("-").replace("-", "_")

    def add_to(self, group: argparse._ActionsContainer) -> None:
        group.add_argument(*self.flags, **self.kwargs)


class Bounded:
    """An argparse ``type``: a number of ``kind`` within bounds, refused at parse time in one line.

    ``at_least``: the smallest value (``above``: the value must be greater than it instead).
    """

    def __init__(
        self,
        kind: type[int] | type[float] = int,
        *,
        at_least: float | None = None,
        above: float | None = None,
        at_most: float | None = None,
        why: str = "",
    ) -> None:
        self.kind, self.at_least, self.above, self.at_most, self.why = kind, at_least, above, at_most, why
        self.__name__ = "whole number" if kind is int else "number"  # argparse names the type in its message

    def __call__(self, text: str) -> int | float:
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {self.__name__}, got {text!r}") from None
        if self.kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        bound = None
        if self.at_least is not None and value < self.at_least:
            bound = f">= {self.at_least:g}"
        elif self.above is not None and value <= self.above:
            bound = f"> {self.above:g}"
        elif self.at_most is not None and value > self.at_most:
            bound = f"<= {self.at_most:g}"
        if bound is not None:
            raise argparse.ArgumentTypeError(f"must be {bound}{self.why}, got {text}")
        return value

    def __repr__(self) -> str:
        return f"Bounded({self.kind.__name__}, at_least={self.at_least}, above={self.above}, at_most={self.at_most})"


def _option(flag: str, **kwargs: Any) -> Option:
    return Option((flag,), kwargs)


#: the default ``--teacher`` as its help says it (``distill``'s default is the study's instead)
_TEACHER_DEFAULT = f"; default {_DEFAULT['teacher']}"

#: the teacher: which network (any form of ``diswot teachers``), its weights, and overrides of what is
#: found in it; the same in ``search``, ``score``, ``rank`` and ``distill``
TEACHER_OPTIONS: tuple[Option, ...] = (
    _option(
        "--teacher",
        default=_DEFAULT["teacher"],
        help="teacher: a short name, torchvision:NAME, timm:NAME, SPACE:ARCH, package.module:factory or "
        f"path/to/file.py:factory (list: diswot teachers){_TEACHER_DEFAULT}",
    ),
    _option(
        "--teacher-weights",
        metavar="PATH",
        help="teacher checkpoint or run folder: a state dict or checkpoint in timm's, torchvision's or diswot's "
        "layout (loaded with weights_only=True)",
    ),
    _option(
        "--teacher-features",
        metavar="NODE",
        help="the teacher's last feature map before the global pool (a torch.fx node or module name), "
        "instead of the one found",
    ),
    _option(
        "--teacher-classifier",
        metavar="NAME",
        help="the teacher's final nn.Linear (module name), instead of the one found",
    ),
    _option(
        "--teacher-image-size",
        type=Bounded(at_least=8),
        metavar="PX",
        help="the teacher's input size (default: its own, from timm/torchvision metadata; else the probe's)",
    ),
)


def add_teacher_options(p: argparse.ArgumentParser, *, from_study: bool = False) -> None:
    """The :data:`TEACHER_OPTIONS` in one group; ``from_study``: no defaults (a study's record fills them)."""
    group = p.add_argument_group("teacher")
    for option in TEACHER_OPTIONS:
        kwargs = dict(option.kwargs)
        if from_study:
            kwargs["default"] = None
            kwargs["help"] = f"{kwargs['help'].removesuffix(_TEACHER_DEFAULT)}; default: the study's"
        Option(option.flags, kwargs).add_to(group)


#: options that decide a score: space, teacher, data, seed, batch, repeats, proxy, init, device
SCORING_OPTIONS: tuple[Option, ...] = (
    _option("--space", required=True, help=f"search space: {', '.join(SPACES)}"),
    *TEACHER_OPTIONS,
    _option(
        "--dataset", default=_DEFAULT["dataset"], choices=DATASETS, help=f"probe data (default {_DEFAULT['dataset']})"
    ),
    _option("--data-dir", metavar="DIR", help="where the dataset lives (default ./data)"),
    _option("--num-classes", type=Bounded(at_least=2), help="classes for synthetic data (default: the space's)"),
    _option("--image-size", type=Bounded(at_least=8), help="probe image size (default: the dataset's or space's)"),
    _option(
        "--seed",
        type=Bounded(at_least=0),
        default=_DEFAULT["seed"],
        help=f"seed of the probe batch, inits and sampler (default {_DEFAULT['seed']})",
    ),
    _option(
        "--batch-size",
        type=Bounded(at_least=2, why=" (the relation term compares samples)"),
        default=_DEFAULT["batch_size"],
        help=f"probe batch size (default {_DEFAULT['batch_size']})",
    ),
    _option(
        "--repeats",
        type=Bounded(at_least=1),
        default=_DEFAULT["repeats"],
        help=f"mean over K seeds and batches (default {_DEFAULT['repeats']})",
    ),
    _option(
        "--proxy",
        help=f"score to use (default {_DEFAULT['proxy']}, or the score a resumed study was made with; "
        "diswot is the paper's exact formula; see README: Which score?)",
    ),
    _option(
        "--reference-size",
        type=Bounded(at_least=8, why=" (a rank needs a sample)"),
        help=f"architectures in the reference sample of a rank-aggregated score such as {DEFAULT_PROXY} "
        f"(default: the first run's --n-trials, from 16 to {DEFAULT_REFERENCE_SIZE}; scored once per study, "
        "reused by the search's first candidates)",
    ),
    _option(
        "--init",
        default=_DEFAULT["init"],
        choices=INITS,
        help=f"random Gaussian init of teacher/student (default {_DEFAULT['init']}, see README)",
    ),
    _option(
        "--init-draw",
        choices=INIT_DRAWS,
        help=f"layer: each layer's init from its own seeded generator, so students that share a layer start "
        f"from the same weights there (common random numbers); stream: one generator for the whole network "
        f"(default {DEFAULT_INIT_DRAW}, or how a resumed study drew them: stream for one made before the choice)",
    ),
    _option(
        "--semantic",
        default=_DEFAULT["semantic"],
        choices=SEMANTIC_MODES,
        help="semantic term: channel-wise (Listing 1, equal widths) or class-wise; auto picks per study",
    ),
    _option("--device", default=_DEFAULT["device"], help=f"auto, cpu or cuda[:N] (default {_DEFAULT['device']})"),
    _option(
        "--precision",
        default=_DEFAULT["precision"],
        choices=PRECISIONS,
        help=f"scoring precision: {_DEFAULT['precision']} (default), tf32 (CUDA) or bf16 autocast; "
        "see BENCHMARKS.md for rank agreement",
    ),
)


def add_scoring_options(p: argparse.ArgumentParser, *, leave_out: Iterable[str] = ()) -> None:
    """The :data:`SCORING_OPTIONS` (but those whose ``dest`` is in ``leave_out``), in one group."""
    group = p.add_argument_group("scoring")
    for option in SCORING_OPTIONS:
        if option.dest not in leave_out:
            option.add_to(group)


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
    p.add_argument(
        "--study",
        required=study_required,
        default=None if study_required else "diswot",
        help="study name" + ("" if study_required else " (default diswot)"),
    )


def add_progress_option(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--no-progress``: the progress as a line every 30 s, even on a terminal."""
    p.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in containers and logs)")


def add_top_option(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--top``: how many of the best distinct students a table lists."""
    p.add_argument("--top", type=Bounded(at_least=1), default=10, help="students in the table of the best (default 10)")


def add_listen_options(p: argparse.ArgumentParser, *, port: int, port_help: str = "") -> None:
    """``--host`` and ``--port`` of a server (this machine only by default)."""
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument(
        "--port", type=Bounded(at_least=0, at_most=65535), default=port, help=f"port (default {port}{port_help})"
    )


def add_artifact_dir_option(p: argparse.ArgumentParser, *, what: str) -> None:
    """``--artifact-dir``: the Optuna FileSystemArtifactStore folder, by default next to the storage."""
    p.add_argument(
        "--artifact-dir",
        metavar="DIR",
        help=f"folder of Optuna artifacts, {what} (default: <SQLite file's folder>/artifacts, ./artifacts for other storages)",
    )


def _count(value: str | None, flag: str) -> int | None:
    if value is None:
        return None
    from diswot.spaces import parse_count

    try:
        count: int | None = parse_count(value)
    except ValueError as exc:
        raise DiswotError(f"{flag}: {exc}") from None
    return count


def _absolute(path: str | None) -> str | None:
    """A path as the study records it: absolute, so that ``distill`` finds it from any folder."""
    return None if path is None else str(Path(path).expanduser().absolute())


#: how an option's text becomes its field's value, where it is not the parsed value itself
_CONVERT: dict[str, Any] = {
    "teacher_weights": _absolute,
    "max_params": lambda v: _count(v, "--max-params"),
    "max_flops": lambda v: _count(v, "--max-flops"),
    "objectives": parse_objectives,
}


def config_from_args(args: argparse.Namespace, **overrides: Any) -> SearchConfig:
    """The :class:`SearchConfig` of parsed CLI options: each field given (not None) as an option,
    converted; the others keep ``SearchConfig``'s defaults; ``overrides`` win."""
    values: dict[str, Any] = {}
    for name in _DEFAULT:
        value = getattr(args, name, None)
        if value is not None and name != "extra":
            values[name] = _CONVERT[name](value) if name in _CONVERT else value
    return SearchConfig(**{**values, **overrides})
