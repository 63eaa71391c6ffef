"""Teacher registry: CIFAR ResNets, WRN-40-2, torchvision ResNets, and NAS-Bench-201 cells.

Every teacher is a :class:`~diswot.spaces.FeatureNetwork`. torchvision models get the contract
through :func:`torchvision.models.feature_extraction.create_feature_extractor`, not copied code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from diswot.spaces import (
    SPACES,
    FeatureNetwork,
    Registry,
    UnknownNameError,
    WrappedNetwork,
    cifar_resnet,
    get_space,
    wide_resnet,
)

from .checkpoint import load_model_state, weights_path
from .errors import DiswotError

__all__ = ["TEACHERS", "TeacherSpec", "build_teacher", "load_weights", "teacher_names", "teacher_spec"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeacherSpec:
    """A registered teacher: its builder, the data kind it expects and its input resolution."""

    name: str
    builder: Callable[[int], FeatureNetwork]
    kind: str  # "cifar" or "imagenet"
    image_size: int
    description: str = ""


TEACHERS: Registry[TeacherSpec] = Registry("teacher")


def _register(name: str, builder: Callable[[int], FeatureNetwork], kind: str, description: str) -> None:
    TEACHERS.register(name, TeacherSpec(name, builder, kind, 32 if kind == "cifar" else 224, description))


def _cifar_resnet(n: int) -> Callable[[int], FeatureNetwork]:
    """The builder of the CIFAR ResNet with ``n`` blocks a stage."""
    return lambda k: cifar_resnet((n, n, n), num_classes=k)


for _n in (3, 5, 7, 9, 18):
    _register(
        f"resnet{6 * _n + 2}",
        _cifar_resnet(_n),
        "cifar",
        f"CIFAR ResNet-{6 * _n + 2} (16/32/64 channels, {_n} blocks a stage)",
    )
_register("resnet8x4", lambda k: cifar_resnet((1, 1, 1), (64, 128, 256), 32, num_classes=k), "cifar", "CRD resnet8x4")
_register("resnet32x4", lambda k: cifar_resnet((5, 5, 5), (64, 128, 256), 32, num_classes=k), "cifar", "CRD resnet32x4")
_register("wrn-40-2", lambda k: wide_resnet(40, 2, num_classes=k), "cifar", "Wide ResNet 40-2")


def _torchvision(arch: str) -> Callable[[int], FeatureNetwork]:
    def build(num_classes: int) -> FeatureNetwork:
        import torchvision
        from torchvision.models.feature_extraction import create_feature_extractor

        model = torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
        body = create_feature_extractor(model, return_nodes={"layer4": "features"})
        return WrappedNetwork(body=body, classifier=model.fc)

    return build


for _arch in ("resnet18", "resnet34", "resnet50"):
    _register(_arch, _torchvision(_arch), "imagenet", f"torchvision {_arch} (ImageNet)")


def teacher_names() -> list[str]:
    """Registered teacher names plus the ``nb201:<arch string>`` form."""
    return [*TEACHERS.names(), "nb201:<arch string>"]


def teacher_spec(name: str) -> TeacherSpec:
    """The spec of ``name``; ``nb201:|...|`` builds a NAS-Bench-201 cell network."""
    prefix, _, text = name.partition(":")
    if text and prefix in SPACES:  # SPACE:ARCH, an architecture of a registered space
        space = get_space(prefix)
        arch = space.decode(text)
        return TeacherSpec(name, lambda k: space.build(arch, num_classes=k), "cifar", space.image_size, f"{prefix} architecture")
    if name not in TEACHERS:
        raise DiswotError(str(UnknownNameError("teacher", name, teacher_names())))
    spec: TeacherSpec = TEACHERS.get(name)
    return spec


def load_weights(model: nn.Module, path: str | Path, *, name: str = "model") -> None:
    """Load a checkpoint (a state dict, or a dict with ``model``/``state_dict``) into ``model``.

    ``path`` is a checkpoint file or a run folder of ``diswot train --out`` (see
    :func:`~diswot.pipeline.checkpoint.weights_path`).

    Uses ``torch.load(weights_only=True)``. torchvision-style keys (``conv1.*``, ``fc.*``) are
    mapped onto wrapped teachers (``body.*``, ``classifier.*``). Raises :class:`DiswotError`
    with one clear line for a missing, corrupt or mismatched file.
    """
    path = weights_path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt files raise many different errors
        raise DiswotError(
            f"cannot read weights {str(path)!r}: not a PyTorch checkpoint ({type(exc).__name__}: {_short(exc)})"
        ) from None
    state = _state_dict(obj)
    if state is None:
        raise DiswotError(f"weights {str(path)!r} hold no state dict (expected a state dict or a dict with 'model')")
    own = model.state_dict()
    if set(state) != set(own):
        state = _remap_torchvision(state, own) or state
    try:
        load_model_state(model, state, what=name, path=path)
    except DiswotError as exc:
        raise DiswotError(f"{exc}. Check --teacher/--model and the number of classes of the dataset") from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return (first.split(". ")[0])[:100]


def _state_dict(obj: Any) -> Mapping[str, torch.Tensor] | None:
    if isinstance(obj, Mapping):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        for key in ("model", "state_dict", "model_state_dict"):
            if key in obj and isinstance(obj[key], Mapping):
                return _state_dict(obj[key])
    return None


def _remap_torchvision(
    state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor] | None:
    mapped = {("classifier." + k[3:] if k.startswith("fc.") else "body." + k): v for k, v in state.items()}
    return mapped if set(mapped) == set(own) else None


def build_teacher(name: str, num_classes: int, weights: str | Path | None = None) -> FeatureNetwork:
    """Build teacher ``name`` for ``num_classes`` classes, optionally loading ``weights``."""
    spec = teacher_spec(name)
    model = spec.builder(num_classes)
    if weights is not None:
        load_weights(model, weights, name=f"teacher {name}")
        log.info("loaded teacher weights from %s", weights)
    return model
