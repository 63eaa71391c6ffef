"""The search-space contract: suggest / from_params / encode / decode / build / limits."""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Any, Generic, Hashable, Iterator, Mapping, TypeVar

import optuna
from optuna.trial import FixedTrial

from diswot.registry import Registry

from ._network import FeatureNetwork

__all__ = [
    "SPACES",
    "ArchError",
    "ArchT",
    "Limits",
    "Space",
    "get_space",
    "list_spaces",
    "parse_count",
    "register_space",
]

#: a space's architecture type: a frozen, hashable value with a canonical string
ArchT = TypeVar("ArchT", bound=Hashable)


class ArchError(ValueError):
    """An architecture that is malformed, unbuildable or over the limits; the message says why."""


def parse_count(text: str | int | float | None) -> int | None:
    """Parse a human count such as ``13M``, ``500K``, ``1.5m`` or ``1000000`` into an int.

    Raises:
        ValueError: with the accepted forms when ``text`` does not parse.
    """
    if text is None or isinstance(text, int):
        return text
    if isinstance(text, float):
        return int(text)
    s = text.strip().upper().replace("_", "")
    mult = {"K": 10**3, "M": 10**6, "G": 10**9}.get(s[-1:], 1)
    num = s[:-1] if s[-1:] in "KMG" and s else s
    try:
        value = float(num)
    except ValueError:
        raise ValueError(
            f"cannot read {text!r} as a count; use a number with an optional K/M/G suffix, e.g. 500K, 13M"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"count {text!r} must be a positive number, e.g. 500K or 13M")
    return int(round(value * mult))


@dataclass(frozen=True)
class Limits:
    """Hard limits on a student: parameter count and number of layers (``None`` = no limit)."""

    max_params: int | None = None
    max_layers: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_params", "max_layers"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v <= 0):
                raise ValueError(f"{name} must be a positive int or None, got {v!r}")


class Space(abc.ABC, Generic[ArchT]):
    """A student search space. Subclasses are stateless apart from their keyword options.

    The single source of truth is :meth:`suggest`: every architecture is a plain Optuna params
    dict, and :meth:`from_params` replays :meth:`suggest` on a :class:`~optuna.trial.FixedTrial`.
    ``ArchT`` is the space's architecture type (``Space[Any]`` where the space is not known).
    """

    #: registry name, e.g. ``"s0"`` (:func:`register_space`)
    name: str = ""
    #: input resolution and default number of classes
    image_size: int = 32
    #: whether the students take :attr:`image_size` whatever the dataset's resolution (a ViT's patch
    #: grid); otherwise CIFAR and ImageNet data keep their own unless ``--image-size`` says otherwise
    own_image_size: bool = False
    default_num_classes: int = 100
    #: limits applied when the user gives none (``Limits()`` = unlimited)
    default_limits: Limits = Limits()

    @property
    def fixed_feature_width(self) -> int | None:
        """Channels of the pre-pool feature map when every arch shares them, else ``None``."""
        return None

    def _num_classes(self, num_classes: int | None) -> int:
        """``num_classes``, or the space's default when ``None``; raises on a non-positive value."""
        if num_classes is None:
            return self.default_num_classes
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ArchError(f"num_classes must be a positive int, got {num_classes!r}")
        return num_classes

    @abc.abstractmethod
    def suggest(self, trial: optuna.trial.BaseTrial) -> ArchT:
        """Suggest one architecture through ``trial.suggest_*`` and return it as an Arch."""

    def from_params(self, params: Mapping[str, Any]) -> ArchT:
        """Rebuild the Arch from a trial's params (replays :meth:`suggest` on a FixedTrial)."""
        try:
            return self.suggest(FixedTrial(dict(params)))
        except ValueError as exc:
            raise ArchError(f"params {dict(params)!r} are not a {self.name} architecture: {exc}") from exc

    @abc.abstractmethod
    def to_params(self, arch: ArchT) -> dict[str, Any]:
        """The params dict that :meth:`suggest` would record for ``arch`` (for enqueue_trial)."""

    @abc.abstractmethod
    def encode(self, arch: ArchT) -> str:
        """The canonical string of ``arch``."""

    @abc.abstractmethod
    def decode(self, text: str) -> ArchT:
        """Parse a canonical string; raises :class:`ArchError` saying what is wrong."""

    @abc.abstractmethod
    def build(self, arch: ArchT, num_classes: int | None = None) -> FeatureNetwork:
        """Build the network (random init) for ``arch``."""

    @abc.abstractmethod
    def count_params(self, arch: ArchT, num_classes: int | None = None) -> int:
        """Number of trainable parameters of the built network."""

    @abc.abstractmethod
    def count_layers(self, arch: ArchT) -> int:
        """Number of layers counted against ``Limits.max_layers`` (see the space's docs)."""

    def check(self, arch: ArchT, limits: Limits | None = None, num_classes: int | None = None) -> str | None:
        """Return ``None`` when ``arch`` is valid and within ``limits``, else the reason."""
        limits = limits or Limits()
        if limits.max_layers is not None:
            layers = self.count_layers(arch)
            if layers > limits.max_layers:
                return f"{layers} layers exceed the limit of {limits.max_layers}"
        if limits.max_params is not None:
            params = self.count_params(arch, num_classes)
            if params > limits.max_params:
                return f"{params:,} parameters exceed the limit of {limits.max_params:,}"
        return None

    def validate(self, arch: ArchT, limits: Limits | None = None, num_classes: int | None = None) -> None:
        """Raise :class:`ArchError` with the reason when :meth:`check` fails."""
        reason = self.check(arch, limits, num_classes)
        if reason is not None:
            raise ArchError(f"{self.encode(arch)}: {reason}")

    def representative(self, arch: ArchT) -> ArchT:
        """One architecture that stands for all those equivalent to ``arch``: each builds the same
        network up to parameter-free parts whose output nothing uses, so their scores and sizes are
        equal. The default: ``arch`` itself (no two architectures of the space are equivalent)."""
        return arch

    def enumerate(self) -> Iterator[ArchT]:
        """Every architecture of a finite space (raises for spaces too large to list)."""
        raise NotImplementedError(f"space {self.name!r} is not enumerable")

    def smallest(self, num_classes: int | None = None) -> ArchT:
        """An architecture with the fewest parameters (used to explain an impossible limit)."""
        return min(self.enumerate(), key=lambda a: self.count_params(a, num_classes))


#: every space, by name, in registration order
SPACES: Registry[type[Space[Any]]] = Registry("space")
SpaceT = TypeVar("SpaceT", bound=Space[Any])


def register_space(cls: type[SpaceT]) -> type[SpaceT]:
    """Class decorator: register a :class:`Space` subclass under its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} has no name to register")
    SPACES.register(cls.name, cls)
    return cls


def get_space(name: str, **options: Any) -> Space[Any]:
    """Instantiate the space registered as ``name`` (raises UnknownNameError listing valid names)."""
    space: Space[Any] = SPACES.get(name)(**options)
    return space


def list_spaces(pattern: str | None = None) -> list[str]:
    """Names of the registered spaces, or those matching the glob ``pattern`` (case-insensitive)."""
    names: list[str] = SPACES.names(pattern)
    return names
