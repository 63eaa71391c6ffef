"""The proxy contract (ARCHITECTURE.md, "Proxy"): a training-free score, higher is better."""

from __future__ import annotations

import abc
import contextlib
import functools
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Mapping, Sequence, TypeVar

import numpy as np
import torch
from scipy import special, stats

from diswot.registry import Registry
from diswot.spaces import FeatureNetwork, NetworkOutput, Space

from ._errors import ProxyError

__all__ = [
    "BNMode",
    "Batch",
    "PROXIES",
    "Proxy",
    "RETEST",
    "Reference",
    "TeacherContext",
    "check_supported",
    "finite",
    "get_proxy",
    "list_proxies",
    "make_proxy",
    "register_proxy",
    "set_bn_mode",
]

#: the mode a proxy runs the student's BatchNorm in
BNMode = Literal["train", "eval", "none"]


@dataclass(frozen=True)
class Batch:
    """The fixed probe batch of a study (one per repeat): images, labels and the class count.

    ``labels`` is ``None`` in the batch a proxy that declares ``needs_labels = False`` is given.
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    num_classes: int

    def require_labels(self) -> torch.Tensor:
        """The labels; a :class:`ProxyError` when there are none (the proxy did not declare ``needs_labels``)."""
        if self.labels is None:
            raise ProxyError("this proxy reads the labels: declare needs_labels = True on its class")
        return self.labels

    def to(self, device: torch.device | str) -> "Batch":
        """The same batch on ``device``."""
        labels = None if self.labels is None else self.labels.to(device)
        return Batch(self.images.to(device), labels, self.num_classes)


@dataclass
class TeacherContext:
    """What a proxy computed once per study and repeat from the fixed teacher and probe batch."""

    teacher: FeatureNetwork | None
    batch: Batch
    cache: dict[str, Any] = field(default_factory=dict)


#: the suffix of a retest term in a :class:`Reference`: the term on a second draw (:attr:`Proxy.retest_terms`)
RETEST = "@retest"


@dataclass(frozen=True)
class Reference:
    """Raw terms of a fixed, seeded sample of the search space, against which a score ranks.

    Scored once per study and stored in it (:meth:`to_json`), so that a trial's value never
    depends on which trials ran before it: resumed studies and many workers agree.
    """

    archs: tuple[str, ...]
    values: Mapping[str, Sequence[float]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "archs", tuple(self.archs))
        object.__setattr__(self, "values", {k: tuple(float(v) for v in vals) for k, vals in self.values.items()})
        for name, vals in self.values.items():
            if len(vals) != len(self.archs):
                raise ValueError(f"reference term {name!r} has {len(vals)} values for {len(self.archs)} archs")

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (``from_json`` reads it back)."""
        return {"archs": list(self.archs), "values": {k: [float(v) for v in vals] for k, vals in self.values.items()}}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "Reference":
        """The reference stored by :meth:`to_json`."""
        return cls(tuple(doc["archs"]), {k: tuple(float(v) for v in vals) for k, vals in doc["values"].items()})

    def terms_of(self, arch: str) -> dict[str, float] | None:
        """The stored raw terms of reference architecture ``arch`` (its canonical string), else ``None``
        (its retest terms left out: they are not the trial's)."""
        try:
            i = self.archs.index(arch)
        except ValueError:
            return None
        return {k: vals[i] for k, vals in self.values.items() if not k.endswith(RETEST)}

    def normal_score(self, term: str, value: float, *, sign: float = 1.0) -> float:
        """``value``'s rank among the reference's ``term`` values, as a standard-normal quantile.

        Inside the reference's range the rank is interpolated linearly between the reference's
        normal scores (Blom's ``Phi^-1((i - 3/8) / (R + 1/4))`` at the i-th smallest value); beyond
        it the quantile keeps growing linearly with the robust scale of the reference (its
        interquartile range / 1.349), so candidates better than the whole reference stay ordered.
        ``sign=-1`` ranks a lower-is-better term.
        """
        ref = np.sort(sign * np.asarray(self.values[term], dtype=float))
        value = sign * value
        n = len(ref)
        z = special.ndtri((np.arange(1, n + 1) - 0.375) / (n + 0.25))
        scale = float(np.subtract(*np.percentile(ref, [75, 25]))) / 1.349
        if not scale > 0:
            scale = float(np.std(ref)) or 1.0
        if value > ref[-1]:
            return float(z[-1] + (value - ref[-1]) / scale)
        if value < ref[0]:
            return float(z[0] - (ref[0] - value) / scale)
        # equal reference values: take the middle of their normal scores
        lo, hi = np.searchsorted(ref, value, "left"), np.searchsorted(ref, value, "right")
        if hi > lo:
            return float(z[lo:hi].mean())
        return float(np.interp(value, ref, z))

    def agreement(self, judge: str, term: str, *, judge_sign: float = 1.0) -> float:
        """Kendall's tau between the reference's ``judge`` values (times ``judge_sign``) and its ``term`` values.

        A statistic of the whole sample, not of one candidate: which of the space's measures goes with
        ``judge`` across it. 0 where either is constant.
        """
        return _kendall(tuple(judge_sign * v for v in self.values[judge]), tuple(self.values[term]))

    def agreement_of_mean(self, judges: Sequence[str], term: str, *, judge_sign: float = 1.0) -> float:
        """Kendall's tau between the architectures' mean rank by ``judges`` (times ``judge_sign``) and
        ``term``: :meth:`agreement` with a judge measured more than once (a term and its retest)."""
        ranks = np.mean([stats.rankdata([judge_sign * v for v in self.values[j]]) for j in judges], axis=0)
        return _kendall(tuple(float(r) for r in ranks), tuple(self.values[term]))

    def log_rank_sum(
        self, terms: Mapping[str, float], names: Sequence[str], *, lower_is_better: Sequence[str] = ()
    ) -> float:
        """``sum_k log Phi(z_k)``: AZ-NAS's sum of log ranks, with the smooth ranks of :meth:`normal_score`."""
        return float(
            sum(
                special.log_ndtr(self.normal_score(k, terms[k], sign=-1.0 if k in lower_is_better else 1.0))
                for k in names
            )
        )


@functools.lru_cache(maxsize=64)
def _kendall(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Kendall's tau-b of two equal-length samples (cached: a reference is asked the same question per candidate)."""
    tau = stats.kendalltau(a, b).statistic
    return float(tau) if math.isfinite(tau) else 0.0


class Proxy(abc.ABC):
    """A zero-cost proxy. Subclasses set the class attributes and implement :meth:`evaluate`.

    The class attributes declare what the proxy needs; :meth:`run` (what the scorer calls)
    gives it exactly that: the teacher only with ``needs_teacher``, the probe images only with
    ``needs_data`` (otherwise zeros of the same shape), the labels only with ``needs_labels``
    (otherwise ``None``), autograd only with ``needs_grad`` (otherwise the call runs under
    :func:`torch.no_grad`), and the student's BatchNorm in ``bn_mode``.
    """

    name: ClassVar[str]
    needs_teacher: ClassVar[bool] = False
    #: reads the probe images (a data-free proxy sees zeros of the batch's shape)
    needs_data: ClassVar[bool] = True
    #: reads the probe labels (otherwise the batch it is given has ``labels=None``)
    needs_labels: ClassVar[bool] = False
    #: computes gradients (otherwise evaluated under ``torch.no_grad``)
    needs_grad: ClassVar[bool] = False
    #: mode the student's BatchNorm runs in: "train" (batch statistics), "eval", or "none" (removed)
    bn_mode: ClassVar[BNMode] = "train"
    #: the paper (or document) that defines the formula
    citation: ClassVar[str] = ""
    #: raw terms that :meth:`combine` ranks against a :class:`Reference` sample of the space; empty
    #: for a proxy whose :meth:`evaluate` gives its ``score`` directly
    reference_terms: ClassVar[tuple[str, ...]] = ()
    #: raw terms that the reference sample also scores on a second draw (another probe batch and
    #: inits, :meth:`retest`), stored as ``term@retest``: :meth:`combine` reads from them how much of
    #: the term's ranking is the architectures' and not the draw's (:meth:`Reference.reliability`)
    retest_terms: ClassVar[tuple[str, ...]] = ()
    #: keyword options the constructor accepts that a search resolves once per study (e.g. the
    #: DisWOT semantic form); the search passes exactly these, so it names no proxy
    options: ClassVar[tuple[str, ...]] = ()

    def prepare(self, teacher: FeatureNetwork | None, batch: Batch) -> TeacherContext:
        """Compute the teacher's side once; the default caches nothing."""
        return TeacherContext(teacher=teacher, batch=batch)

    @abc.abstractmethod
    def evaluate(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """Score ``student``; returns a dict with at least ``"score"`` (and any side terms)."""

    def refusal(self, student: FeatureNetwork, out: NetworkOutput) -> str | None:
        """Why this proxy cannot score students like ``student``, or ``None`` when it can.

        ``out`` is the student's output (shapes only: it may live on the meta device). A search
        asks once, before any trial (:func:`check_supported`), so a proxy defined for one kind of
        network only (ReLU codes, BatchNorm, ``(B, C, H, W)`` maps) refuses a space in one line
        instead of failing every trial. The default: every network.
        """
        return None

    def combine(self, terms: Mapping[str, float], reference: Reference) -> float:
        """The score of raw ``terms`` against ``reference`` (proxies with :attr:`reference_terms`)."""
        raise NotImplementedError(f"proxy {self.name!r} scores without a reference")

    def reference_weights(self, reference: Reference) -> dict[str, float]:
        """The weights :meth:`combine` derives from ``reference`` itself, by term (none by default)."""
        return {}

    def score(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> float:
        """The score alone, checked finite."""
        return finite(self.name, self.evaluate(ctx, student, batch))["score"]

    def visible(self, batch: Batch) -> Batch:
        """The part of the probe batch this proxy declares it reads (see the class docstring)."""
        images = batch.images if self.needs_data else torch.zeros_like(batch.images)
        labels = batch.labels if self.needs_labels else None
        return Batch(images, labels, batch.num_classes)

    def retest(self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch) -> dict[str, float]:
        """The :attr:`retest_terms` of ``student`` (the default: those of :meth:`evaluate`)."""
        terms = self.evaluate(ctx, student, batch)
        return {k: terms[k] for k in self.retest_terms}

    def run(
        self, ctx: TeacherContext, student: FeatureNetwork, batch: Batch, *, retest: bool = False
    ) -> dict[str, float]:
        """:meth:`evaluate` (``retest``: :meth:`retest`) under the declared needs: BatchNorm mode,
        autograd, visible batch.

        ``student`` is changed in place (its mode; with ``bn_mode="none"`` its BatchNorm layers
        are replaced by identities): pass a network built for this call.
        """
        set_bn_mode(student, self.bn_mode)
        grad = contextlib.nullcontext() if self.needs_grad else torch.no_grad()
        with grad:
            return (self.retest if retest else self.evaluate)(ctx, student, self.visible(batch))


_BN_TYPES: tuple[type[torch.nn.Module], ...] = (
    torch.nn.BatchNorm1d,
    torch.nn.BatchNorm2d,
    torch.nn.BatchNorm3d,
    torch.nn.SyncBatchNorm,
)


def set_bn_mode(model: torch.nn.Module, mode: str) -> torch.nn.Module:
    """Put ``model`` in train mode (``"train"``, ``"none"``) or eval mode (``"eval"``); ``"none"``
    also replaces every BatchNorm module (in place) by :class:`torch.nn.Identity`."""
    if mode not in ("train", "eval", "none"):
        raise ValueError(f"bn_mode must be 'train', 'eval' or 'none', got {mode!r}")
    model.train(mode != "eval")
    if mode == "none":
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, _BN_TYPES):
                    setattr(parent, name, torch.nn.Identity())
    return model


def check_supported(proxy: Proxy, space: Space[Any], num_classes: int, image_size: int) -> None:
    """Raise :class:`ProxyError` with ``proxy``'s one-line reason when it refuses ``space``'s students.

    The space's smallest student is built and run on the meta device (no memory, no compute),
    which is enough for the structural checks of :meth:`Proxy.refusal`; nothing is built for a
    proxy that keeps the default (it scores every network).
    """
    if type(proxy).refusal is Proxy.refusal:
        return
    with torch.device("meta"):
        net = space.build(space.smallest(num_classes), num_classes)
        with torch.no_grad():
            out = net.forward_all(torch.empty(2, 3, image_size, image_size))
    reason = proxy.refusal(net, out)
    if reason is not None:
        raise ProxyError(f"proxy {proxy.name!r} cannot score {space.name} students: {reason}; choose another `proxy`")


def finite(name: str, terms: dict[str, float]) -> dict[str, float]:
    """Return ``terms`` as floats, raising :class:`ProxyError` if any is not finite."""
    out = {k: float(v) for k, v in terms.items()}
    bad = {k: v for k, v in out.items() if not math.isfinite(v)}
    if bad:
        raise ProxyError(f"proxy {name!r} gave a non-finite value {bad}; the candidate cannot be scored")
    return out


#: every proxy, by name, in registration order
PROXIES: Registry[type[Proxy]] = Registry("proxy")
P = TypeVar("P", bound=Proxy)


def register_proxy(cls: type[P]) -> type[P]:
    """Class decorator: register a :class:`Proxy` subclass under its ``name``."""
    PROXIES.register(cls.name, cls)
    return cls


def list_proxies(pattern: str | None = None) -> list[str]:
    """Names of the registered proxies, or those matching the glob ``pattern`` (case-insensitive)."""
    names: list[str] = PROXIES.names(pattern)
    return names


def get_proxy(name: str, **options: Any) -> Proxy:
    """Instantiate the proxy registered as ``name``."""
    proxy: Proxy = PROXIES.get(name)(**options)
    return proxy


def make_proxy(name: str, resolved: Mapping[str, Any]) -> Proxy:
    """Instantiate ``name`` with the study's ``resolved`` options that its class declares
    (:attr:`Proxy.options`); the others are ignored."""
    cls = PROXIES.get(name)
    return get_proxy(name, **{k: v for k, v in resolved.items() if k in cls.options})
