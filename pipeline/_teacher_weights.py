"""``--teacher-weights``: a state dict or checkpoint in timm's, torchvision's or the project's layout.

Read with ``torch.load(weights_only=True)``. The file is tried against the module as built (timm,
torchvision and user layouts: their own parameter names) and against the wrapped teacher (the
project's layout: a ``diswot train`` checkpoint). A classifier trained for other classes than the
dataset's is left out for the search (the classifier stays randomly initialised, as DisWOT scores
at initialisation) and refused for distillation.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .checkpoint import load_model_state, weights_path
from .errors import DiswotError

__all__ = ["load_teacher_weights", "read_state_dict"]

log = logging.getLogger(__name__)

State = Mapping[str, torch.Tensor]


def read_state_dict(path: str | Path) -> tuple[Path, State]:
    """The state dict in ``path`` (a file or a ``diswot train`` run folder), ``module.`` prefixes removed."""
    file = weights_path(path)
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt files raise many different errors
        lines = str(exc).strip().splitlines()
        first = (lines[0] if lines else "").split(". ")[0][:100]
        raise DiswotError(
            f"cannot read weights {str(file)!r}: not a PyTorch checkpoint ({type(exc).__name__}: {first})"
        ) from None
    state = _state_dict(obj)
    if state is None:
        raise DiswotError(f"weights {str(file)!r} hold no state dict (expected a state dict or a dict with 'model')")
    if state and all(k.startswith("module.") for k in state):  # saved from DistributedDataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    return file, state


def _state_dict(obj: Any) -> State | None:
    if isinstance(obj, Mapping):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        for key in ("model", "state_dict", "model_state_dict", "state_dict_ema"):
            if key in obj and isinstance(obj[key], Mapping):
                return _state_dict(obj[key])
    return None


def load_teacher_weights(
    targets: list[nn.Module], classifier: nn.Linear, path: str | Path, *, name: str, rebuild_classes: bool
) -> bool:
    """Load ``path`` into the first of ``targets`` whose parameter names it holds; True when the
    classifier was left out because its classes differ (only with ``rebuild_classes``)."""
    file, state = read_state_dict(path)
    target = next((t for t in targets if set(t.state_dict()) == set(state)), None)
    if target is None:
        target = next((t for t in targets if set(_remap_torchvision(state)) == set(t.state_dict())), None)
        if target is not None:
            state = _remap_torchvision(state)
    if target is None:  # the message names what differs from the module as built
        load_model_state(targets[0], state, what=f"teacher {name}", path=file)
        raise AssertionError("unreachable")  # pragma: no cover
    own = target.state_dict()
    ptrs = {p.data_ptr() for p in classifier.parameters()}
    head = {k for k, v in own.items() if v.data_ptr() in ptrs}
    wrong = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if wrong and set(wrong) <= head:
        weight = next(k for k in head if k.endswith("weight"))
        theirs, ours = int(state[weight].shape[0]), int(own[weight].shape[0])
        if not rebuild_classes:
            raise DiswotError(
                f"teacher weights {str(file)!r} classify {theirs} classes, the dataset has {ours}: distillation needs "
                "a teacher trained on the dataset's classes (fine-tune it first, e.g. diswot train)"
            )
        log.warning(
            "teacher weights %s classify %d classes, the dataset has %d: the classifier is rebuilt (random init)",
            file,
            theirs,
            ours,
        )
        state = {k: (own[k] if k in head else v) for k, v in state.items()}
        target.load_state_dict(state)
        return True
    load_model_state(target, state, what=f"teacher {name}", path=file)
    return False


def _remap_torchvision(state: State) -> dict[str, torch.Tensor]:
    """torchvision ResNet keys (``conv1.*``, ``fc.*``) onto the short-name teachers (``body.*``, ``classifier.*``)."""
    return {("classifier." + k[3:] if k.startswith("fc.") else "body." + k): v for k, v in state.items()}
