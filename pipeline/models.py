"""One model resolver, as timm's ``create_model`` and torchvision's ``get_model``: any model spec to a
builder and its input (README, "Teachers").

:func:`resolve_model` takes a registered short name (``resnet110``), ``SPACE:ARCH``
(``s0:ResNet[1,3,5]``, ``nb201:|...|``), ``torchvision:NAME``, ``timm:NAME``,
``package.module:factory``, ``path/to/file.py:factory`` or an ``nn.Module``, and gives a
:class:`ModelSource`: the canonical text, ``build(num_classes)`` and the native input (size, mean,
std). ``--teacher``, ``train --model`` and ``distill`` all resolve through it.

The short names are the CIFAR ResNets, WRN-40-2 and torchvision's ResNets (through
:func:`torchvision.models.feature_extraction.create_feature_extractor`, not copied code), each
registered on its builder with :func:`register_teacher`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, TypeVar

from torch import nn

from diswot.registry import Registry, UnknownNameError
from diswot.spaces import FeatureNetwork, WrappedNetwork, cifar_resnet, wide_resnet

from ._scoped import seeded
from ._model_forms import FORMS, InputSpec, ModelSource, module_input, parse_form
from .errors import DiswotError

__all__ = [
    "FORMS",
    "TEACHERS",
    "InputSpec",
    "ModelSource",
    "TeacherSpec",
    "create_model",
    "list_teachers",
    "register_teacher",
    "resolve_model",
    "teacher_spec",
]


@dataclass(frozen=True)
class TeacherSpec:
    """A registered short name: its builder, the data kind it expects and its input resolution."""

    name: str
    builder: Callable[[int], FeatureNetwork]
    kind: str  # "cifar" or "imagenet"
    image_size: int
    description: str = ""


#: the short names of a model spec, in registration order
TEACHERS: Registry[TeacherSpec] = Registry("teacher")
Builder = TypeVar("Builder", bound=Callable[[int], FeatureNetwork])
#: the input resolution of each kind of short name
_IMAGE_SIZES = {"cifar": 32, "imagenet": 224}
_OTHER_FORMS = " Other forms: torchvision:NAME, timm:NAME, SPACE:ARCH, module:factory (diswot teachers)."


def register_teacher(name: str, kind: str, description: str) -> Callable[[Builder], Builder]:
    """Decorator: register a builder ``(num_classes) -> FeatureNetwork`` as the short name ``name``.

    ``kind`` is ``"cifar"`` (32 px inputs) or ``"imagenet"`` (224 px).
    """
    if kind not in _IMAGE_SIZES:
        raise ValueError(f"teacher kind must be one of {', '.join(_IMAGE_SIZES)}, got {kind!r}")

    def add(builder: Builder) -> Builder:
        TEACHERS.register(name, TeacherSpec(name, builder, kind, _IMAGE_SIZES[kind], description))
        return builder

    return add


def list_teachers(pattern: str | None = None) -> list[str]:
    """The registered short names, or those matching the glob ``pattern`` (case-insensitive)."""
    names: list[str] = TEACHERS.names(pattern)
    return names


def teacher_spec(name: str) -> TeacherSpec:
    """The registered short name ``name``; an unknown one lists the names, close matches and other forms."""
    if name not in TEACHERS:
        raise DiswotError(f"{UnknownNameError('teacher', name, TEACHERS.names())}{_OTHER_FORMS}")
    spec: TeacherSpec = TEACHERS.get(name)
    return spec


def resolve_model(spec: str | nn.Module, *, name: str | None = None, field: str = "teacher") -> ModelSource:
    """The :class:`ModelSource` of ``spec``: any form of :data:`FORMS`, or an ``nn.Module``.

    A module is named ``name`` (default: its class name) and each build is a copy of it. ``field``
    names the option in messages (``teacher``, ``model``). An unknown name is one line with close
    matches; nothing is built.
    """
    if isinstance(spec, nn.Module):
        module = spec
        native = module_input(module)
        return ModelSource(
            name or type(module).__name__, "module", lambda _k: copy.deepcopy(module), module_input, native
        )
    if ":" in spec:
        return parse_form(spec, field=field)
    short = teacher_spec(spec)
    native = InputSpec(short.image_size)  # the short name's size, the dataset's normalisation
    return ModelSource(short.name, "name", short.builder, lambda _m: native, native)


def create_model(
    spec: str | nn.Module, *, num_classes: int, seed: int | None = None, field: str = "model"
) -> nn.Module:
    """Build ``spec`` (any form of :func:`resolve_model`) for ``num_classes`` classes, random init.

    With ``seed`` the init is drawn from torch's generators seeded with it, and their states are
    restored afterwards; without, from the generators in force (as timm's ``create_model``).
    """
    source = resolve_model(spec, field=field)
    if seed is None:
        return source.build(num_classes)
    with seeded(seed):
        return source.build(num_classes)


@register_teacher("resnet20", "cifar", "CIFAR ResNet-20 (16/32/64 channels, 3 blocks a stage)")
def resnet20(num_classes: int) -> FeatureNetwork:
    return cifar_resnet((3, 3, 3), num_classes=num_classes)


@register_teacher("resnet32", "cifar", "CIFAR ResNet-32 (16/32/64 channels, 5 blocks a stage)")
def resnet32(num_classes: int) -> FeatureNetwork:
    return cifar_resnet((5, 5, 5), num_classes=num_classes)


@register_teacher("resnet44", "cifar", "CIFAR ResNet-44 (16/32/64 channels, 7 blocks a stage)")
def resnet44(num_classes: int) -> FeatureNetwork:
    return cifar_resnet((7, 7, 7), num_classes=num_classes)


@register_teacher("resnet56", "cifar", "CIFAR ResNet-56 (16/32/64 channels, 9 blocks a stage)")
def resnet56(num_classes: int) -> FeatureNetwork:
    return cifar_resnet((9, 9, 9), num_classes=num_classes)


@register_teacher("resnet110", "cifar", "CIFAR ResNet-110 (16/32/64 channels, 18 blocks a stage)")
def resnet110(num_classes: int) -> FeatureNetwork:
    return cifar_resnet((18, 18, 18), num_classes=num_classes)


@register_teacher("resnet8x4", "cifar", "CRD resnet8x4")
def resnet8x4(num_classes: int) -> FeatureNetwork:
    return cifar_resnet((1, 1, 1), (64, 128, 256), 32, num_classes=num_classes)


@register_teacher("resnet32x4", "cifar", "CRD resnet32x4")
def resnet32x4(num_classes: int) -> FeatureNetwork:
    return cifar_resnet((5, 5, 5), (64, 128, 256), 32, num_classes=num_classes)


@register_teacher("wrn-40-2", "cifar", "Wide ResNet 40-2")
def wrn_40_2(num_classes: int) -> FeatureNetwork:
    return wide_resnet(40, 2, num_classes=num_classes)


def _torchvision_resnet(arch: str, num_classes: int) -> FeatureNetwork:
    """torchvision's ``arch`` with random init, its ``layer4`` output as the features."""
    import torchvision
    from torchvision.models.feature_extraction import create_feature_extractor

    model = torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    body = create_feature_extractor(model, return_nodes={"layer4": "features"})
    return WrappedNetwork(body=body, classifier=model.fc)


@register_teacher("resnet18", "imagenet", "torchvision resnet18 (ImageNet)")
def resnet18(num_classes: int) -> FeatureNetwork:
    return _torchvision_resnet("resnet18", num_classes)


@register_teacher("resnet34", "imagenet", "torchvision resnet34 (ImageNet)")
def resnet34(num_classes: int) -> FeatureNetwork:
    return _torchvision_resnet("resnet34", num_classes)


@register_teacher("resnet50", "imagenet", "torchvision resnet50 (ImageNet)")
def resnet50(num_classes: int) -> FeatureNetwork:
    return _torchvision_resnet("resnet50", num_classes)
