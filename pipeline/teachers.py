"""Teachers: the registered short names and every other form of ``--teacher`` (README, "Teachers").

Every teacher is a :class:`~diswot.spaces.FeatureNetwork`. The short names are the CIFAR ResNets,
WRN-40-2 and torchvision's ResNets (through
:func:`torchvision.models.feature_extraction.create_feature_extractor`, not copied code), each
registered on its builder with :func:`register_teacher`;
``torchvision:NAME``, ``timm:NAME``, ``SPACE:ARCH`` and user factories are parsed in
:mod:`._teacher_source`, their features and classifier found in :mod:`._teacher_wrap`, their
weights loaded in :mod:`._teacher_weights`. :func:`load_teacher` gives a :class:`Teacher`: the
network, its input size and normalisation, and its fingerprint (recorded on the study).
"""

from __future__ import annotations

import copy
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import torch
from torch import nn

from diswot.registry import Registry, UnknownNameError
from diswot.spaces import FeatureNetwork, WrappedNetwork, cifar_resnet, get_space, wide_resnet

from ._teacher_source import FORMS, InputSpec, TeacherSource, parse_teacher
from ._teacher_weights import load_teacher_weights
from ._teacher_wrap import wrap_module
from .errors import DiswotError

__all__ = [
    "FORMS",
    "TEACHERS",
    "InputSpec",
    "Teacher",
    "TeacherSpec",
    "build_teacher",
    "fingerprint",
    "list_teachers",
    "load_teacher",
    "load_weights",
    "register_teacher",
    "teacher_names",
    "teacher_spec",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeacherSpec:
    """A registered teacher: its builder, the data kind it expects and its input resolution."""

    name: str
    builder: Callable[[int], FeatureNetwork]
    kind: str  # "cifar" or "imagenet"
    image_size: int
    description: str = ""


#: the short names of ``--teacher``, in registration order
TEACHERS: Registry[TeacherSpec] = Registry("teacher")
Builder = TypeVar("Builder", bound=Callable[[int], FeatureNetwork])
#: the input resolution of each kind of short-name teacher
_IMAGE_SIZES = {"cifar": 32, "imagenet": 224}


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


def list_teachers(pattern: str | None = None) -> list[str]:
    """The registered short names, or those matching the glob ``pattern`` (case-insensitive)."""
    names: list[str] = TEACHERS.names(pattern)
    return names


def teacher_names() -> list[str]:
    """Registered teacher names plus the ``nb201:<arch string>`` form."""
    return [*TEACHERS.names(), "nb201:<arch string>"]


def teacher_spec(name: str) -> TeacherSpec:
    """The spec of a short name or ``nb201:|...|`` (what ``diswot train --model`` builds)."""
    if name.startswith("nb201:"):
        space = get_space("nb201")
        arch = space.decode(name[len("nb201:") :])
        return TeacherSpec(name, lambda k: space.build(arch, num_classes=k), "cifar", 32, "NAS-Bench-201 cell")
    if name not in TEACHERS:
        raise DiswotError(f"{UnknownNameError('teacher', name, teacher_names())}{_OTHER_FORMS}")
    spec: TeacherSpec = TEACHERS.get(name)
    return spec


_OTHER_FORMS = " Other forms: torchvision:NAME, timm:NAME, SPACE:ARCH, module:factory (diswot teachers)."


@dataclass
class Teacher:
    """A ready teacher: the network, what it was built from, its input and its fingerprint."""

    network: FeatureNetwork
    #: the ``--teacher`` text (or the name given with a module from Python)
    spec: str
    #: its native input (size None: the probe's; normalisation None: the dataset's)
    input: InputSpec
    #: hash of the names and shapes of its parameters and buffers (:func:`fingerprint`)
    fingerprint: str
    #: whether its weights' classifier was left out because its classes differ from the dataset's
    classes_rebuilt: bool = False

    def image_size(self, probe_size: int) -> int:
        """The resolution the teacher runs at: its own, else the probe's."""
        return self.input.image_size or probe_size


def fingerprint(model: nn.Module) -> str:
    """The first 16 hex digits of a SHA-256 of the names and shapes of ``model``'s parameters and buffers."""
    text = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _source(spec: str) -> TeacherSource:
    def short_input(name: str) -> InputSpec:
        # the short name's size and the dataset's normalisation
        return InputSpec(teacher_spec(name).image_size)

    try:
        return parse_teacher(spec, TEACHERS.names(), lambda n, k: teacher_spec(n).builder(k), short_input)
    except DiswotError as exc:
        if ":" not in spec:  # a short name: the registry's message with the close matches and the other forms
            teacher_spec(spec)
        raise exc from None


def load_teacher(
    spec: str,
    num_classes: int,
    *,
    weights: str | Path | None = None,
    features: str | None = None,
    classifier: str | None = None,
    image_size: int | None = None,
    module: nn.Module | None = None,
    probe_size: int = 32,
    distill: bool = False,
    seed: int = 0,
) -> Teacher:
    """Build the teacher ``spec`` (or wrap ``module``, named ``spec``) for ``num_classes`` classes.

    ``features``/``classifier`` override the discovery (:mod:`._teacher_wrap`); ``image_size``
    overrides the teacher's own input size (``probe_size`` when it has none). A classifier whose
    classes differ from ``num_classes`` (in ``weights`` or in ``module``) is rebuilt with random
    init for the search and refused with ``distill``.
    """
    if module is not None:  # a copy: the study initialises its teacher in place
        from ._teacher_source import module_input

        own = copy.deepcopy(module)
        source = TeacherSource(spec, "module", lambda _k: own, module_input)
    else:
        source = _source(spec)
    torch.manual_seed(seed)
    raw = source.build(num_classes)
    native = source.input_of(raw)
    if image_size is not None:
        native = InputSpec(image_size, native.mean, native.std)
    size = native.image_size or probe_size
    network, _ = wrap_module(raw, name=spec, image_size=size, features=features, classifier=classifier)
    rebuilt = False
    if network.classifier.out_features != num_classes:
        rebuilt = _rebuild_classifier(network, num_classes, spec, distill=distill)
    if weights is not None:
        targets = [raw] if raw is network else [raw, network]
        rebuilt = load_teacher_weights(targets, network.classifier, weights, name=spec, rebuild_classes=not distill)
        log.info("loaded teacher weights from %s", weights)
    return Teacher(network, source.spec, native, fingerprint(network), rebuilt)


def _rebuild_classifier(network: FeatureNetwork, num_classes: int, spec: str, *, distill: bool) -> bool:
    old = network.classifier
    if distill:
        raise DiswotError(
            f"teacher {spec} classifies {old.out_features} classes, the dataset has {num_classes}: distillation "
            "needs a teacher for the dataset's classes"
        )
    log.warning("teacher %s classifies %d classes: rebuilt for %d (random init)", spec, old.out_features, num_classes)
    network.classifier = nn.Linear(old.in_features, num_classes, device=old.weight.device)
    return True


def load_weights(model: nn.Module, path: str | Path, *, name: str = "model") -> None:
    """Load a checkpoint (a state dict, or a dict with ``model``/``state_dict``) into ``model``.

    ``path`` is a checkpoint file or a run folder of ``diswot train --out``; torchvision ResNet
    keys (``conv1.*``, ``fc.*``) are mapped onto the wrapped short-name teachers.
    """
    classifier = getattr(model, "classifier", None)
    if not isinstance(classifier, nn.Linear):
        classifier = nn.Linear(1, 1)
    load_teacher_weights([model], classifier, path, name=name.removeprefix("teacher "), rebuild_classes=False)


def build_teacher(name: str, num_classes: int, weights: str | Path | None = None) -> FeatureNetwork:
    """Build teacher ``name`` (any ``--teacher`` form) for ``num_classes`` classes, optionally loading ``weights``."""
    return load_teacher(name, num_classes, weights=weights).network
