"""A student as a self-contained program: ``torch.export`` with a dynamic batch, and its state dict.

``export(module, "out/")`` writes ``out/student.pt2`` (:func:`torch.export.save`: loadable with
:func:`torch.export.load` without diswot installed, for any batch size), ``out/state_dict.pt``
and ``out/export.json`` (what was exported: input shape, the student's space and arch). The
exported program is checked to give the module's logits on a probe batch before anything is
kept; a refused export leaves no folder behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .errors import DiswotError

__all__ = ["PROGRAM_NAME", "STATE_DICT_NAME", "ExportResult", "export", "export_folder"]

#: the files of an export folder
PROGRAM_NAME, STATE_DICT_NAME, INFO_NAME = "student.pt2", "state_dict.pt", "export.json"
#: the largest batch the exported program accepts
MAX_BATCH = 65536


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and how closely the program matched the module."""

    out: Path
    program: Path
    state_dict: Path
    #: one input's shape (channels, height, width); the batch dimension is dynamic
    input_shape: tuple[int, int, int]
    #: the largest absolute difference of the program's logits from the module's on the probe batch
    max_abs_diff: float


def export_folder(out: str | Path) -> Path:
    """``out``, refused when it exists and is not an empty folder (an export never overwrites)."""
    folder = Path(out).expanduser()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise DiswotError(f"`out` {str(out)!r} exists and is not an empty folder; choose a new folder")
    return folder


def _program(module: nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    """``module`` exported with a dynamic batch dimension; a module torch.export cannot trace is one line."""
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    try:
        return torch.export.export(module, (example,), dynamic_shapes=({0: batch},), strict=False)
    except Exception as exc:  # torch.export raises many kinds of errors for what it cannot trace
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DiswotError(f"torch.export cannot export this module ({type(exc).__name__}: {first})") from None


def _check(program: torch.export.ExportedProgram, module: nn.Module, probe: torch.Tensor, atol: float) -> float:
    """The largest logit difference of ``program`` from ``module`` on ``probe``; refused above ``atol``."""
    with torch.no_grad():
        want, got = module(probe), program.module()(probe)
    if tuple(got.shape) != tuple(want.shape):
        raise DiswotError(
            f"the exported program gives logits of shape {tuple(got.shape)}, the module {tuple(want.shape)}"
        )
    diff = float((got - want).abs().max())
    if not diff <= atol:
        raise DiswotError(
            f"the exported program's logits differ from the module's by {diff:.3g} (more than {atol:g}) on a probe "
            "batch; the module does not export faithfully"
        )
    return diff


def export(
    module: nn.Module,
    out: str | Path,
    *,
    image_size: int,
    channels: int = 3,
    info: Mapping[str, Any] | None = None,
    seed: int = 0,
    atol: float = 1e-4,
) -> ExportResult:
    """Export ``module`` (in eval mode, on the CPU) to the new folder ``out``; checked on a probe batch.

    ``info`` is added to ``export.json`` (e.g. the student's space and arch). The program is traced on
    a batch of 2 and checked on a probe batch of 3 random images (``seed``): a batch size other than
    the traced one, so the dynamic batch is checked too.
    """
    folder = export_folder(out)
    generator = torch.Generator().manual_seed(seed)
    shape = (channels, image_size, image_size)
    example, probe = (torch.randn(n, *shape, generator=generator) for n in (2, 3))
    was_training, device = module.training, next(module.parameters(), torch.empty(0)).device
    module.cpu().eval()
    try:
        program = _program(module, example)
        diff = _check(program, module, probe, atol)
        return _write(folder, program, module, shape, diff, info or {})
    finally:
        module.to(device).train(was_training)


def _write(
    folder: Path,
    program: torch.export.ExportedProgram,
    module: nn.Module,
    shape: tuple[int, int, int],
    diff: float,
    info: Mapping[str, Any],
) -> ExportResult:
    """Write the three files into a temporary folder beside ``folder``, then move it into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        torch.export.save(program, tmp / PROGRAM_NAME)
        torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, tmp / STATE_DICT_NAME)
        doc = {"program": PROGRAM_NAME, "state_dict": STATE_DICT_NAME, "input_shape": ["batch", *shape], **info}
        (tmp / INFO_NAME).write_text(json.dumps(doc, indent=2) + "\n")
        if folder.exists():
            folder.rmdir()  # empty (checked before)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(folder, folder / PROGRAM_NAME, folder / STATE_DICT_NAME, shape, diff)
