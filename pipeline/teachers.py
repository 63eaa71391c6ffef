"""Teachers: a model spec made ready to score against and to distil from (README, "Teachers").

Every teacher is a :class:`~diswot.spaces.FeatureNetwork`. The spec, any form of
:func:`~diswot.pipeline.models.resolve_model` (short names, ``torchvision:NAME``, ``timm:NAME``,
``SPACE:ARCH``, user factories, a module), is resolved in :mod:`.models`; the features and
classifier are found in :mod:`._teacher_wrap`, the weights loaded in :mod:`._teacher_weights`.
:func:`load_teacher` gives a :class:`Teacher`: the network, its input size and normalisation, and
its fingerprint (recorded on the study).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from diswot.spaces import FeatureNetwork

from ._scoped import seeded
from ._teacher_weights import load_teacher_weights
from ._teacher_wrap import wrap_module
from .errors import DiswotError
from .models import (
    FORMS,
    TEACHERS,
    InputSpec,
    TeacherSpec,
    list_teachers,
    register_teacher,
    resolve_model,
    teacher_spec,
)

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
    "teacher_spec",
]

log = logging.getLogger(__name__)


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
    # a module is copied: the study initialises its teacher in place
    source = resolve_model(spec) if module is None else resolve_model(module, name=spec)
    with seeded(seed):  # torch's global generator is restored afterwards
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
