"""The proxy contract (DESIGN.md "Proxy"): a training-free score, higher is better."""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch

from diswot.spaces import FeatureNetwork, Registry

from ..errors import ProxyError

__all__ = ["Batch", "PROXIES", "Proxy", "TeacherContext", "finite", "get_proxy", "register_proxy"]


@dataclass(frozen=True)
class Batch:
    """The fixed probe batch of a study (one per repeat): images, labels and the class count."""

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int

    def to(self, device: torch.device | str) -> "Batch":
        """The same batch on ``device``."""
        return Batch(self.images.to(device), self.labels.to(device), self.num_classes)


@dataclass
class TeacherContext:
    """What a proxy computed once per study and repeat from the fixed teacher and probe batch."""

    teacher: FeatureNetwork | None
    batch: Batch
    cache: dict[str, Any] = field(default_factory=dict)


class Proxy(abc.ABC):
    """A zero-cost proxy. Subclasses set the class attributes and implement :meth:`evaluate`."""

    name: ClassVar[str]
    needs_teacher: ClassVar[bool] = False
    needs_data: ClassVar[bool] = True
    needs_labels: ClassVar[bool] = False
    needs_grad: ClassVar[bool] = False
    #: mode the student's BatchNorm runs in: "train" (batch statistics), "eval", or "none" (removed)
    bn_mode: ClassVar[Literal["train", "eval", "none"]] = "train"
    #: paper or doc reference for the formula
    reference: ClassVar[str] = ""

    def prepare(self, teacher: FeatureNetwork | None, batch: Batch) -> TeacherContext:
        """Compute the teacher's side once; the default caches nothing."""
        return TeacherContext(teacher=teacher, batch=batch)

    @abc.abstractmethod
    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """Score ``student``; returns a dict with at least ``"score"`` (and any side terms)."""

    def score(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> float:
        """The score alone, checked finite."""
        return finite(self.name, self.evaluate(ctx, student, batch))["score"]


def finite(name: str, terms: dict[str, float]) -> dict[str, float]:
    """Return ``terms`` as floats, raising :class:`ProxyError` if any is not finite."""
    out = {k: float(v) for k, v in terms.items()}
    bad = {k: v for k, v in out.items() if not math.isfinite(v)}
    if bad:
        raise ProxyError(f"proxy {name!r} gave a non-finite value {bad}; the candidate cannot be scored")
    return out


PROXIES: Registry[type[Proxy]] = Registry("proxy")


def register_proxy(cls: type[Proxy]) -> type[Proxy]:
    """Class decorator: register a :class:`Proxy` subclass under ``cls.name``."""
    PROXIES.register(cls.name, cls)
    return cls


def get_proxy(name: str, **options: Any) -> Proxy:
    """Instantiate the proxy registered as ``name``."""
    return PROXIES.get(name)(**options)
