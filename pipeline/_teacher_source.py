"""The forms of ``--teacher``: what to build, and at which input size and normalisation.

``torchvision:NAME`` (any classification model of ``torchvision.models.list_models``),
``timm:NAME`` (any ``timm.list_models()`` name, extra ``diswot[timm]``), ``SPACE:ARCH`` (an
architecture of any registered search space), ``package.module:factory`` or
``path/to/file.py:factory`` (user code: ``factory(num_classes=K)`` returns an ``nn.Module``), and
the registered short names (:data:`~diswot.pipeline.teachers.TEACHERS`).
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

from torch import nn

from diswot.spaces import SPACES, get_space

from .errors import DiswotError

__all__ = [
    "FORMS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "InputSpec",
    "TeacherSource",
    "module_input",
    "parse_teacher",
    "torchvision_input",
]

#: the forms of ``--teacher``, for ``diswot teachers`` and the option's help
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
class TeacherSource:
    """A parsed ``--teacher``: its form, a builder for a class count, and where its input size comes from."""

    spec: str
    form: str
    build: Callable[[int], nn.Module]
    #: the native input, read from the built module (timm's ``pretrained_cfg``, torchvision's weights meta)
    input_of: Callable[[nn.Module], InputSpec]


def parse_teacher(
    spec: str,
    short_names: Sequence[str],
    build_short: Callable[[str, int], nn.Module],
    short_input: Callable[[str], InputSpec],
) -> TeacherSource:
    """The :class:`TeacherSource` of ``spec``; an unknown name is one line with close matches."""
    prefix, sep, rest = spec.partition(":")
    if not sep:
        if spec not in short_names:
            raise DiswotError(_unknown("teacher", spec, short_names, "; see diswot teachers for the forms"))
        return TeacherSource(spec, "name", lambda k: build_short(spec, k), lambda _m: short_input(spec))
    if prefix == "torchvision":
        return _torchvision(rest)
    if prefix == "timm":
        return _timm(rest)
    if prefix in SPACES.names():
        return _space(prefix, rest)
    return _user(spec)


def _unknown(what: str, name: str, valid: Sequence[str], hint: str = "") -> str:
    close = difflib.get_close_matches(name, list(valid), n=3, cutoff=0.5)
    found = f"; close matches: {', '.join(close)}" if close else ""
    return f"unknown {what} {name!r}{found}{hint}"


def _torchvision(name: str) -> TeacherSource:
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    if name not in names:
        raise DiswotError(_unknown("torchvision model", name, names, " (torchvision.models.list_models)"))

    def build(num_classes: int) -> nn.Module:
        model: nn.Module = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
        return model

    return TeacherSource(f"torchvision:{name}", "torchvision", build, lambda _m: torchvision_input(name))


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
        raise DiswotError("timm teachers need timm: pip install 'diswot[timm]' (timm>=1.0)") from None
    return timm


def _timm(name: str) -> TeacherSource:
    timm = _timm_module()
    names = timm.list_models()
    if name not in names:
        raise DiswotError(_unknown("timm model", name, names, " (timm.list_models())"))

    def build(num_classes: int) -> nn.Module:
        model: nn.Module = timm.create_model(name, pretrained=False, num_classes=num_classes)
        return model

    return TeacherSource(f"timm:{name}", "timm", build, module_input)


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


def _space(space_name: str, arch_text: str) -> TeacherSource:
    space = get_space(space_name)
    arch = space.decode(arch_text)  # ArchError: one line saying what is wrong
    text = f"{space.name}:{space.encode(arch)}" if space_name != "nb201" else f"nb201:{arch_text}"

    def build(num_classes: int) -> nn.Module:
        model: nn.Module = space.build(arch, num_classes=num_classes)
        return model

    return TeacherSource(text, "space", build, lambda _m: InputSpec(space.image_size))


def _user(spec: str) -> TeacherSource:
    target, _, attr = spec.rpartition(":")
    if not target or not attr.isidentifier():
        raise DiswotError(
            f"`teacher` {spec!r}: expected package.module:factory or path/to/file.py:factory (see diswot teachers)"
        )
    module = _import_user(target, spec)
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise DiswotError(_unknown(f"factory in {target}", attr, names, "; it must be a callable of num_classes"))

    def build(num_classes: int) -> nn.Module:
        try:
            model = factory(num_classes=num_classes)
        except Exception as exc:
            raise DiswotError(
                f"teacher factory {spec} raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}; "
                f"it must accept num_classes={num_classes} and return an nn.Module"
            ) from None
        if not isinstance(model, nn.Module):
            raise DiswotError(
                f"teacher factory {spec} returned {type(model).__name__}, not an nn.Module; return the network"
            )
        return model

    return TeacherSource(spec, "user", build, module_input)


def _import_user(target: str, spec: str) -> Any:
    if target.endswith(".py"):
        path = Path(target).expanduser().resolve()
        if not path.is_file():
            raise DiswotError(f"`teacher` {spec!r}: no file {target!r}")
        name = "diswot_user_teacher_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
        loader = importlib.util.spec_from_file_location(name, path)
        if loader is None or loader.loader is None:
            raise DiswotError(f"`teacher` {spec!r}: {target!r} is not a Python file")
        module = importlib.util.module_from_spec(loader)
        sys.modules[name] = module
        try:
            loader.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise DiswotError(f"`teacher` {spec!r}: importing {target} raised {type(exc).__name__}: {exc}") from None
        return module
    try:
        return importlib.import_module(target)
    except ImportError as exc:
        forms = ["torchvision", "timm", *SPACES.names()]
        close = difflib.get_close_matches(target, forms, n=1, cutoff=0.7)
        hint = f"; did you mean {close[0]}:{spec.rpartition(':')[2]}?" if close else ""
        raise DiswotError(
            f"`teacher` {spec!r}: cannot import {target!r} ({exc}); is it installed, or give path/to/file.py:factory"
            f"{hint}"
        ) from None
    except Exception as exc:
        raise DiswotError(f"`teacher` {spec!r}: importing {target} raised {type(exc).__name__}: {exc}") from None
