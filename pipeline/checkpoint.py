"""Training checkpoints: atomic writes, ``weights_only`` loading, RNG states, clear errors.

A checkpoint is a plain dict of tensors and primitive containers, so ``torch.load(path,
weights_only=True)`` reads it (no pickled classes): model / optimizer / scheduler / AMP-scaler
state dicts, the completed ``epoch``, the RNG states of every rank, the model string, the resolved
configuration and the per-epoch history. It holds ``model`` at the top level, so
:func:`diswot.pipeline.teachers.load_weights` accepts it as ``--teacher-weights``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from ._choices import CHECKPOINT_NAME
from .errors import DiswotError

__all__ = [
    "CHECKPOINT_NAME",
    "FORMAT",
    "VERSION",
    "CheckpointError",
    "atomic_write_text",
    "check_config",
    "load_checkpoint",
    "load_model_state",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "weights_path",
]

log = logging.getLogger(__name__)

#: the checkpoint file of a run folder (what ``diswot train --out DIR`` writes, every epoch)


def weights_path(value: str | Path, *, option: str = "`teacher_weights`") -> Path:
    """The checkpoint behind ``value``: a checkpoint file, or a run folder holding :data:`CHECKPOINT_NAME`.

    One rule for every command that takes weights; raises :class:`DiswotError` naming what is missing.
    """
    path = Path(value).expanduser()
    if path.is_dir():
        inner = path / CHECKPOINT_NAME
        if not inner.is_file():
            raise DiswotError(
                f"{option} {str(value)!r} is a folder without {CHECKPOINT_NAME}: pass a checkpoint file or a "
                "run folder of diswot train `out` (is the training finished?)"
            )
        return inner
    if not path.exists():
        raise DiswotError(
            f"{option} {str(value)!r} does not exist: pass a checkpoint file or a run folder of diswot train `out`"
        )
    if not path.is_file():
        raise DiswotError(f"{option} {str(value)!r} is not a file or a folder: pass a checkpoint file or a run folder")
    return path


FORMAT = "diswot-checkpoint"
VERSION = 1
_REQUIRED = ("model", "optimizer", "scheduler", "epoch", "config", "arch")


class CheckpointError(DiswotError):
    """A checkpoint that is missing, corrupt, of another format, or for another run."""


def rng_state() -> dict[str, Any]:
    """The Python, NumPy, torch and CUDA RNG states as tensors and lists (``weights_only``-safe)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": {"version": int(version), "state": list(internal), "gauss": gauss},
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore states saved by :func:`rng_state` (CUDA states only when the GPU count matches)."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        (npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    cuda = list(state.get("cuda") or [])
    if cuda and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            log.warning(
                "checkpoint has %d CUDA RNG states, this machine %d GPUs: CUDA RNG not restored",
                len(cuda),
                torch.cuda.device_count(),
            )


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` (plus format tags) atomically: a temp file in the same folder, then ``os.replace``.

    A reader, or a run killed mid-write, sees either the previous checkpoint or the new one.
    """
    path = Path(path)
    data = {"format": FORMAT, "version": VERSION, **payload}
    _atomic_write(path, lambda fh: torch.save(data, fh))
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically (used for ``results.json``)."""
    path = Path(path)
    _atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
    return path


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    first = lines[0].split(". ")[0] if lines else ""
    return first[:160]


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a diswot checkpoint with ``weights_only=True``; one-line :class:`CheckpointError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        with warnings.catch_warnings():  # torch warns about unsupported pickle opcodes before raising
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt or foreign files raise many different errors
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r}: corrupt or not a PyTorch file "
            f"({type(exc).__name__}: {_first_line(exc)}); delete it or point to another one"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is not a diswot training checkpoint (no format tag {FORMAT!r}); "
            "it can still serve as `teacher_weights` if it holds a state dict"
        )
    if data.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {data.get('version')!r}; this diswot reads {VERSION}"
        )
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise CheckpointError(f"checkpoint {str(path)!r} is incomplete: no {', '.join(missing)}")
    return data


def check_config(
    saved: Mapping[str, Any], current: Mapping[str, Any], *, mutable: Iterable[str] = (), path: str | Path = ""
) -> None:
    """Refuse to resume a checkpoint written under another configuration (one line with the diff)."""
    skip = set(mutable)
    diff = [
        f"{k}: {saved.get(k)!r} -> {current.get(k)!r}"
        for k in sorted((set(saved) | set(current)) - skip)
        if saved.get(k) != current.get(k)
    ]
    if diff:
        raise CheckpointError(
            f"checkpoint {str(path)!r} was written by another run ({'; '.join(diff)}); "
            "use the original options, or another `out` without `resume`"
        )


def load_model_state(model: nn.Module, state: Mapping[str, torch.Tensor], *, what: str, path: str | Path = "") -> None:
    """``model.load_state_dict(state)`` with one clear line for missing, extra or misshapen tensors."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        if shapes:
            k = shapes[0]
            parts.append(f"shape mismatch at {k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}")
        raise CheckpointError(f"checkpoint {str(path)!r} does not fit {what}: {'; '.join(parts)}")
    model.load_state_dict(state)


def to_jsonable(value: Any) -> Any:
    """A JSON round-trip of ``value`` (tuples become lists), as stored in checkpoints and studies."""
    return json.loads(json.dumps(value))


__all__ += ["to_jsonable"]
