"""Helpers shared by the baseline and KD-based proxies: layer selection, modes, hooks."""

from __future__ import annotations

import contextlib
import copy
from typing import Iterator, Sequence, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from diswot.spaces import FeatureNetwork

from ._errors import ProxyError
from ._base import set_bn_mode

__all__ = [
    "WEIGHT_LAYERS",
    "capture_outputs",
    "cross_entropy",
    "module_modes",
    "preserved_state",
    "require_teacher",
    "run_hooked",
    "strip_batchnorm",
    "weight_layers",
]

ModuleT = TypeVar("ModuleT", bound=nn.Module)

#: the layers whose weights the pruning-at-init proxies score (as in Abdelfattah et al., 2021)
WEIGHT_LAYERS: tuple[type[nn.Conv2d], type[nn.Linear]] = (nn.Conv2d, nn.Linear)


def weight_layers(model: nn.Module) -> list[nn.Conv2d | nn.Linear]:
    """The Conv2d and Linear modules of ``model`` that have a weight, in module order."""
    return [m for m in model.modules() if isinstance(m, WEIGHT_LAYERS) and getattr(m, "weight", None) is not None]


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Mean cross-entropy; checks that the labels fit the classifier."""
    if labels is None:
        raise ProxyError("this proxy reads the labels: declare needs_labels = True on its class")
    if labels.numel() and int(labels.max()) >= logits.shape[1]:
        raise ProxyError(
            f"a label ({int(labels.max())}) is out of range for a classifier with {logits.shape[1]} outputs; "
            "build the network with the dataset's number of classes"
        )
    return F.cross_entropy(logits, labels)


@contextlib.contextmanager
def module_modes(model: nn.Module, training: bool | None = None) -> Iterator[nn.Module]:
    """Temporarily set every module's ``training`` flag (``None``: keep), restoring each after."""
    saved = [(m, m.training) for m in model.modules()]
    try:
        if training is not None:
            model.train(training)
        yield model
    finally:
        for m, flag in saved:
            m.training = flag


@contextlib.contextmanager
def preserved_state(model: nn.Module) -> Iterator[nn.Module]:
    """Restore ``model``'s buffers (BatchNorm running statistics) and modes on exit.

    A train-mode forward updates the running statistics; a proxy that only looks at a network
    (the teacher, or a student the caller keeps) must leave them as it found them.
    """
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    with module_modes(model):
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, b in model.named_buffers():
                    if name in buffers:
                        b.copy_(buffers[name])


def strip_batchnorm(model: ModuleT) -> ModuleT:
    """Replace every BatchNorm module of ``model`` (in place) by :class:`torch.nn.Identity`."""
    training = model.training
    set_bn_mode(model, "none")
    return model.train(training)


@contextlib.contextmanager
def capture_outputs(
    model: nn.Module, types: Sequence[type[nn.Module]], *, inputs: bool = False
) -> Iterator[list[torch.Tensor]]:
    """Collect the outputs (or first inputs) of every module of ``types`` during a forward pass."""
    store: list[torch.Tensor] = []
    handles = []
    for m in model.modules():
        if isinstance(m, tuple(types)):
            if inputs:
                handles.append(m.register_forward_pre_hook(lambda _m, args: store.append(args[0])))
            else:
                handles.append(m.register_forward_hook(lambda _m, _args, out: store.append(out)))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def run_hooked(
    model: nn.Module, images: torch.Tensor, handles: list[torch.utils.hooks.RemovableHandle], *, grad: bool = False
) -> None:
    """One forward pass of ``images`` without autograd (``grad=True``: with it, for hooks that keep
    outputs to differentiate), then remove ``handles`` (hooks that read it)."""
    try:
        with torch.enable_grad() if grad else torch.no_grad():
            model(images)
    finally:
        for h in handles:
            h.remove()


def require_teacher(name: str, teacher: FeatureNetwork | None) -> FeatureNetwork:
    """The teacher, or a :class:`ProxyError` saying that ``name`` needs one."""
    if teacher is None:
        raise ProxyError(f"proxy {name!r} compares the student with a teacher; give one (`teacher`)")
    return teacher


def fresh_copy(model: ModuleT) -> ModuleT:
    """A deep copy of ``model`` with no gradients attached (for proxies that change it)."""
    clone = copy.deepcopy(model)
    for p in clone.parameters():
        p.grad = None
    return clone


__all__ += ["fresh_copy"]
