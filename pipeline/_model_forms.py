"""The forms of a model spec (``--teacher``, ``train --model``): what to build, at which input size
and normalisation.

``torchvision:NAME`` (any classification model of ``torchvision.models.list_models``),
``timm:NAME`` (any ``timm.list_models()`` name, extra ``diswot[timm]``), ``SPACE:ARCH`` (an
architecture of any registered search space), ``package.module:factory`` or
``path/to/file.py:factory`` (user code: ``factory(num_classes=K)`` returns an ``nn.Module``). The
registered short names and the one entry point, :func:`~diswot.pipeline.models.resolve_model`,
are in :mod:`.models`.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from diswot.spaces import SPACES, get_space

from .errors import DiswotError

__all__ = [
    "FORMS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "InputSpec",
    "ModelSource",
    "module_input",
    "parse_form",
    "unknown_name",
    "torchvision_input",
]

#: the forms of a model spec, for ``diswot teachers`` and the options' help
FORMS: tuple[tuple[str, str], ...] = (
    ("NAME", "a short name below (CIFAR ResNets, WRN-40-2, torchvision ResNets)"),
    ("torchvision:NAME", "any torchvision classification model, e.g. torchvision:mobilenet_v3_small"),
    ("timm:NAME", "any timm model, e.g. timm:convnext_atto (pip install 'diswot[timm]')"),
    ("SPACE:ARCH", "an architecture of a search space, e.g. s0:ResNet[7,7,7] or nb201:<arch string>"),
    ("package.module:factory", "your code: factory(num_classes=K) returns an nn.Module"),
    ("path/to/file.py:factory", "the same, from a file"),
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputSpec:
    """A network's input: resolution (None: the probe's) and normalisation (None: the dataset's)."""

    image_size: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


@dataclass(frozen=True)
class ModelSource:
    """A resolved model spec: its canonical text, its form, a builder for a class count, and its input."""

    #: the canonical text (``s0:ResNet[1,3,5]``, ``timm:resnet18``, the short name, ...)
    spec: str
    #: ``name``, ``torchvision``, ``timm``, ``space``, ``user`` or ``module``
    form: str
    #: ``build(num_classes)``: a new network with random init (from torch's generator in force)
    build: Callable[[int], nn.Module]
    #: the native input, read from a built module (timm's ``pretrained_cfg``, torchvision's weights meta)
    input_of: Callable[[nn.Module], InputSpec]
    #: the native input when known without building (short names, spaces, torchvision)
    known_input: InputSpec | None = None

    def native_input(self) -> InputSpec:
        """The native input (size, mean, std); a form that needs the module builds it on the meta
        device (on the CPU, seeded, where the meta device fails it)."""
        if self.known_input is not None:
            return self.known_input
        try:
            with torch.device("meta"):
                model = self.build(2)
        except DiswotError:
            raise
        except Exception:  # user code that cannot run on the meta device
            with torch.random.fork_rng(devices=[]):
                model = self.build(2)
        return self.input_of(model)


def parse_form(spec: str, *, field: str = "teacher") -> ModelSource:
    """The :class:`ModelSource` of a ``PREFIX:REST`` spec; ``field`` names the option in messages."""
    prefix, _, rest = spec.partition(":")
    if prefix == "torchvision":
        return _torchvision(rest)
    if prefix == "timm":
        return _timm(rest)
    if prefix in SPACES.names():
        return _space(prefix, rest)
    return _user(spec, field)


def unknown_name(what: str, name: str, valid: Sequence[str], hint: str = "") -> str:
    close = difflib.get_close_matches(name, list(valid), n=3, cutoff=0.5)
    found = f"; close matches: {', '.join(close)}" if close else ""
    return f"unknown {what} {name!r}{found}{hint}"


def _torchvision(name: str) -> ModelSource:
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    if name not in names:
        raise DiswotError(unknown_name("torchvision model", name, names, " (torchvision.models.list_models)"))

    def build(num_classes: int) -> nn.Module:
        model: nn.Module = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
        return model

    native = torchvision_input(name)
    return ModelSource(f"torchvision:{name}", "torchvision", build, lambda _m: native, native)


def torchvision_input(name: str) -> InputSpec:
    """The crop size and normalisation of the model's default weights' transforms, else 224 px ImageNet."""
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(name)
    except (KeyError, ValueError):
        return InputSpec(224, IMAGENET_MEAN, IMAGENET_STD)
    default = getattr(weights, "DEFAULT", None) or next(iter(weights), None)
    if default is None:
        return InputSpec(224, IMAGENET_MEAN, IMAGENET_STD)
    transform = default.transforms()
    crop = getattr(transform, "crop_size", None)
    min_size = default.meta.get("min_size")
    size = int(crop[0]) if crop else int(min_size[0]) if min_size else 224
    mean = tuple(getattr(transform, "mean", IMAGENET_MEAN))
    std = tuple(getattr(transform, "std", IMAGENET_STD))
    return InputSpec(size, mean, std)


def _timm_module() -> Any:
    try:
        import timm
    except ImportError:
        raise DiswotError("timm models need timm: pip install 'diswot[timm]' (timm>=1.0)") from None
    return timm


def _timm(name: str) -> ModelSource:
    timm = _timm_module()
    names = timm.list_models()
    if name not in names:
        raise DiswotError(unknown_name("timm model", name, names, " (timm.list_models())"))

    def build(num_classes: int) -> nn.Module:
        model: nn.Module = timm.create_model(name, pretrained=False, num_classes=num_classes)
        return model

    return ModelSource(f"timm:{name}", "timm", build, module_input)


def module_input(model: nn.Module) -> InputSpec:
    """timm's ``pretrained_cfg``/``default_cfg`` (``input_size``, ``mean``, ``std``), an ``image_size``
    attribute, 224 px ImageNet for a torchvision model; else the probe's size and the dataset's
    normalisation."""
    for attr in ("pretrained_cfg", "default_cfg"):
        cfg = getattr(model, attr, None)
        if isinstance(cfg, dict) and cfg.get("input_size"):
            mean, std = cfg.get("mean"), cfg.get("std")
            return InputSpec(
                int(cfg["input_size"][-1]),
                tuple(float(v) for v in mean) if mean else None,
                tuple(float(v) for v in std) if std else None,
            )
    size = getattr(model, "image_size", None)
    size = size if isinstance(size, int) else None
    if type(model).__module__.startswith("torchvision.models."):  # an ImageNet classifier
        return InputSpec(size or 224, IMAGENET_MEAN, IMAGENET_STD)
    return InputSpec(size)


def _space(space_name: str, arch_text: str) -> ModelSource:
    space = get_space(space_name)
    arch = space.decode(arch_text)  # ArchError: one line saying what is wrong
    text = f"{space.name}:{space.encode(arch)}" if space_name != "nb201" else f"nb201:{arch_text}"

    def build(num_classes: int) -> nn.Module:
        model: nn.Module = space.build(arch, num_classes=num_classes)
        return model

    native = InputSpec(space.image_size)
    return ModelSource(text, "space", build, lambda _m: native, native)


def _user(spec: str, field: str) -> ModelSource:
    target, _, attr = spec.rpartition(":")
    if not target or not attr.isidentifier():
        raise DiswotError(
            f"`{field}` {spec!r}: expected package.module:factory or path/to/file.py:factory (see diswot teachers)"
        )
    module = _import_user(target, spec, field)
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise DiswotError(unknown_name(f"factory in {target}", attr, names, "; it must be a callable of num_classes"))

    def build(num_classes: int) -> nn.Module:
        try:
            model = factory(num_classes=num_classes)
        except Exception as exc:
            raise DiswotError(
                f"{field} factory {spec} raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
                f"it must accept num_classes={num_classes} and return an nn.Module"
            ) from None
        if not isinstance(model, nn.Module):
            raise DiswotError(
                f"{field} factory {spec} returned {type(model).__name__}, not an nn.Module; return the network"
            )
        return model

    return ModelSource(spec, "user", build, module_input)


def _import_user(target: str, spec: str, field: str) -> Any:
    if target.endswith(".py"):
        path = Path(target).expanduser().resolve()
        if not path.is_file():
            raise DiswotError(f"`{field}` {spec!r}: no file {target!r}")
        name = "diswot_user_teacher_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
        loader = importlib.util.spec_from_file_location(name, path)
        if loader is None or loader.loader is None:
            raise DiswotError(f"`{field}` {spec!r}: {target!r} is not a Python file")
        module = importlib.util.module_from_spec(loader)
        sys.modules[name] = module
        try:
            loader.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise DiswotError(f"`{field}` {spec!r}: importing {target} raised {type(exc).__name__}: {exc}") from None
        return module
    try:
        return importlib.import_module(target)
    except ImportError as exc:
        forms = ["torchvision", "timm", *SPACES.names()]
        close = difflib.get_close_matches(target, forms, n=1, cutoff=0.7)
        hint = f"; did you mean {close[0]}:{spec.rpartition(':')[2]}?" if close else ""
        raise DiswotError(
            f"`{field}` {spec!r}: cannot import {target!r} ({exc}); is it installed, or give path/to/file.py:factory"
            f"{hint}"
        ) from None
    except Exception as exc:
        raise DiswotError(f"`{field}` {spec!r}: importing {target} raised {type(exc).__name__}: {exc}") from None
