"""Score architectures against a fixed teacher: the teacher side once per study and repeat."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterable, Iterator, Mapping, Sequence, Union

import torch

from diswot.proxies import Batch, FlopHooks, Proxy, Reference, TeacherContext, finite
from diswot.spaces import FeatureNetwork, Space

from ._choices import PRECISIONS
from ._scoped import precision_flags, preserved_rng, seeded
from .init import DEFAULT_INIT_DRAW, INIT_DRAWS, initialise
from .errors import ProxyError

__all__ = ["PRECISIONS", "ReferenceSource", "ScoreResult", "Scorer", "resolve_device"]

#: how a scorer gets its reference sample when first needed: ``source(scorer, on_arch)`` scores (or
#: reads) it with that scorer, calling ``on_arch`` after each architecture it scores (:mod:`.reference`)
ReferenceSource = Callable[["Scorer", Union[Callable[[], None], None]], Reference]

#: scoring precisions: ``fp32`` (default), ``tf32`` (TF32 matmuls/convs on CUDA), ``bf16`` (autocast)


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    from .errors import DiswotError

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DiswotError("`device` cuda was given but no CUDA GPU is available; use `device` cpu or auto")
    try:
        return torch.device(device)
    except RuntimeError:
        raise DiswotError(f"unknown `device` {device!r}; use auto, cpu or cuda[:N]") from None


@dataclass
class ScoreResult:
    """A candidate's score (mean over repeats), every term, and the scoring wall time."""

    score: float
    terms: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    per_repeat: list[float] = field(default_factory=list)
    #: FLOPs per image of the student's forward pass (``torch.utils.flop_counter`` formulas)
    flops: int | None = None


class Scorer:
    """Scores architectures of ``space`` with ``proxy`` against a fixed ``teacher``.

    For repeat ``r`` the teacher is initialised with seed ``seed*1000 + r`` (unless it carries
    trained weights), run once on ``teacher_batches[r]`` by ``proxy.prepare`` when the repeat is
    first scored (the first repeat at construction), and the result is reused for every candidate;
    ``contexts`` hands over teacher sides another scorer of the same teacher, probe batches and
    seed prepared (:meth:`prepared`). ``teacher_batches`` are the probe images of ``batches`` at the
    teacher's own input size and normalisation (:func:`~diswot.pipeline.data.network_batches`;
    default: ``batches``): each candidate costs one student forward at the student's size,
    whatever the teacher's. Each student is built directly on ``device`` with the same seed, so a
    score depends on the architecture only; with ``init_draw="layer"`` each layer's weights come from
    their own generator (:func:`~.init.initialise`'s ``seed``), so students that share a layer start
    from the same weights there (common random numbers; ``"stream"``: one stream for the whole
    network, how studies made before drew them). The proxy runs under its declared needs
    (:meth:`~diswot.proxies.Proxy.run`): the teacher, images, labels and autograd only
    when it declares them, the student's BatchNorm in its ``bn_mode``.
    """

    def __init__(
        self,
        *,
        space: Space,
        proxy: Proxy,
        batches: Sequence[Batch],
        teacher: FeatureNetwork | None = None,
        device: torch.device | str = "cpu",
        init: str = "gaussian",
        init_draw: str = DEFAULT_INIT_DRAW,
        seed: int = 0,
        num_classes: int,
        init_teacher: bool = True,
        precision: str = "fp32",
        channels_last: bool = True,
        reference: Reference | ReferenceSource | None = None,
        teacher_batches: Sequence[Batch] | None = None,
        contexts: Mapping[int, TeacherContext] | None = None,
    ) -> None:
        if not batches:
            raise ValueError("Scorer needs at least one probe batch")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if init_draw not in INIT_DRAWS:
            raise ValueError(f"init_draw must be one of {', '.join(INIT_DRAWS)}, got {init_draw!r}")
        self.precision = precision
        self.init_draw = init_draw
        # the reference sample a ``reference_terms`` proxy ranks against (:mod:`.reference`): given,
        # or built from its source when first needed (:meth:`reference_sample`)
        self._reference = reference if isinstance(reference, Reference) else None
        self._reference_source = None if isinstance(reference, Reference) else reference
        self.last_flops: int | None = None
        #: rank the mean terms of the repeats once instead of averaging each repeat's score: how a
        #: study of several repeats made before scored its trials (set when such a study resumes)
        self.average_terms = False
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.space = space
        self.proxy = proxy
        self.device = torch.device(device)
        self.init = init
        self.seed = seed
        self.num_classes = num_classes
        self.batches = self._on_device(batches)
        if teacher_batches is not None and len(teacher_batches) != len(batches):
            raise ValueError(f"{len(teacher_batches)} teacher batches for {len(batches)} probe batches")
        self._teacher_side = self.batches if teacher_batches is None else self._on_device(teacher_batches)
        if teacher is not None:
            teacher = teacher.to(self.device, memory_format=self.memory_format).train()
        self._teacher, self._init_teacher = teacher, init_teacher
        given = dict(contexts or {})
        if not set(given) <= set(range(len(self.batches))):
            raise ValueError(f"teacher sides of repeats {sorted(given)} for {len(self.batches)} probe batches")
        self._contexts: dict[int, TeacherContext] = given
        missing = set(range(len(self.batches))) - set(given)
        self.context(min(missing, default=0))  # a teacher that does not fit says so here, not in a trial

    def context(self, repeat: int) -> TeacherContext:
        """The teacher side of ``repeat`` (``proxy.prepare`` on its probe batch), prepared when first needed."""
        if repeat not in self._contexts:
            teacher = self._teacher
            init_here = teacher is not None and self._init_teacher
            with seeded(self._seed(repeat) + 1, self.device) if init_here else preserved_rng(self.device):
                if teacher is not None and init_here:
                    initialise(teacher, self.init, seed=self._layer_seed(self._seed(repeat) + 1))
                with self._autocast():
                    batch = self.proxy.visible(self._teacher_side[repeat])
                    self._contexts[repeat] = self.proxy.prepare(teacher if self.proxy.needs_teacher else None, batch)
        return self._contexts[repeat]

    @property
    def contexts(self) -> list[TeacherContext]:
        """The teacher side of every repeat, in order (each prepared when first needed)."""
        return [self.context(r) for r in range(len(self.batches))]

    def prepared(self) -> dict[int, TeacherContext]:
        """The teacher sides prepared so far, repeat -> side: a scorer of the same study with more
        repeats (the pick's) takes them as ``contexts`` instead of preparing them again."""
        return dict(self._contexts)

    @property
    def reference(self) -> Reference | None:
        """The reference sample a ``reference_terms`` proxy ranks against, built when first read."""
        return self.reference_sample()

    @reference.setter
    def reference(self, value: Reference | None) -> None:
        self._reference, self._reference_source = value, None

    def reference_sample(self, on_arch: Callable[[], None] | None = None) -> Reference | None:
        """The reference sample, built from its source on the first call (``on_arch`` after each
        architecture scored for it); ``None`` for a proxy that needs none or a scorer given none."""
        if self._reference is None and self._reference_source is not None and self.proxy.reference_terms:
            self._reference = self._reference_source(self, on_arch)
        return self._reference

    def _on_device(self, batches: Sequence[Batch]) -> list[Batch]:
        return [
            Batch(
                b.images.to(self.device).contiguous(memory_format=self.memory_format),
                b.labels.to(self.device) if b.labels is not None else None,
                b.num_classes,
            )
            for b in batches
        ]

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        """bf16 autocast for ``precision="bf16"``; on CUDA, TF32 on for ``tf32`` only (restored after)."""
        tf32 = self.precision == "tf32" if self.device.type == "cuda" else None
        bf16 = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")
        with precision_flags(tf32=tf32), bf16:
            yield

    def _seed(self, repeat: int) -> int:
        return self.seed * 1000 + repeat

    def _layer_seed(self, seed: int) -> int | None:
        """The seed of :func:`~.init.initialise`'s per-layer draws, ``None`` when one stream draws them."""
        return seed if self.init_draw == "layer" else None

    def seeded(self, repeat: int) -> contextlib.AbstractContextManager[None]:
        """torch's generators seeded for ``repeat`` inside (the student's init and a proxy's draws), restored after."""
        return seeded(self._seed(repeat), self.device)

    def build(self, arch: Hashable, repeat: int | None = 0) -> FeatureNetwork:
        """Build and initialise the student for ``repeat``, directly on the scoring device.

        ``repeat=None`` draws the init from torch's generator in force (inside :meth:`seeded`; per-layer
        draws take the seed it was last seeded with). Convolutions run channels-last (oneDNN/cuDNN's faster layout) unless disabled. A device context
        is entered only when the default device differs (it intercepts every tensor op of the build).
        """
        if repeat is not None:
            with self.seeded(repeat):
                return self.build(arch, None)
        on_device = contextlib.nullcontext() if torch.get_default_device() == self.device else self.device
        with on_device:
            net = self.space.build(arch, num_classes=self.num_classes)
        seed = self._layer_seed(torch.initial_seed())  # inside ``seeded(r)``: the repeat's seed
        return initialise(net, self.init, seed=seed).to(memory_format=self.memory_format).train()

    def raw(self, arch: Hashable, repeats: Iterable[int] | None = None) -> list[dict[str, float]]:
        """The proxy's terms of ``arch`` for every repeat (or those in ``repeats``), checked finite,
        before any reference.

        The FLOPs per image of the first repeat's forward pass are kept in :attr:`last_flops`.
        """
        out = []
        self.last_flops = None
        wanted = range(len(self.batches)) if repeats is None else repeats
        for r in wanted:
            ctx, batch = self.context(r), self.batches[r]
            with self.seeded(r):  # the proxy draws from the build's seeded stream
                net = self.build(arch, None)
                with self._autocast(), FlopHooks(net) if r == 0 else contextlib.nullcontext() as hooks:
                    terms = self.proxy.run(ctx, net, batch)
                if hooks is not None:
                    self.last_flops = hooks.per_image or None
            out.append(finite(self.proxy.name, terms))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return out

    def retest(self, arch: Hashable, repeat: int) -> dict[str, float]:
        """The proxy's retest terms (:attr:`~diswot.proxies.Proxy.retest_terms`) of ``arch`` on
        ``repeat``'s probe batch and inits, checked finite: a reference sample's second draw."""
        ctx, batch = self.context(repeat), self.batches[repeat]
        with self.seeded(repeat):
            net = self.build(arch, None)
            with self._autocast():
                terms = self.proxy.run(ctx, net, batch, retest=True)
        checked: dict[str, float] = finite(self.proxy.name, terms)
        return checked

    def from_reference(self, arch: Hashable) -> ScoreResult | None:
        """The score of a reference architecture from the raw terms the reference holds, without a
        forward pass; ``None`` when ``arch`` is not in it (or the reference keeps only the ranked terms).

        Equal to :meth:`score`'s, for a study of one repeat (the reference holds each architecture's
        mean raw terms, and a score of several repeats is the mean of theirs).
        """
        if not self.proxy.reference_terms or self.reference is None:
            return None
        if len(self.batches) > 1 and not self.average_terms:
            return None  # with several repeats the score is the mean of each repeat's: the reference holds means
        stored = self.reference.terms_of(self.space.encode(arch))
        if stored is None or "flops" not in stored:
            return None
        flops = int(stored.pop("flops")) or None
        score = self.proxy.combine(stored, self.reference)
        terms = finite(self.proxy.name, {**stored, "score": score})
        return ScoreResult(score, terms, 0.0, [score] if len(self.batches) == 1 else [], flops)

    def score(self, arch: Hashable) -> ScoreResult:
        """Mean score and terms over the repeats; raises ProxyError when a value is not finite.

        A proxy with ``reference_terms`` ranks each repeat's terms against :attr:`reference`; the
        score is the mean of those ranked scores, not the rank of the mean terms: a draw's terms are
        put on the reference's scale before they are averaged (on S0's distillation ground truth,
        Kendall 0.846 against 0.834 at 4 repeats; BENCHMARKS.md, "The noise of one draw"). The
        terms reported are the means. With :attr:`average_terms` (a study of several repeats made
        before) the mean terms are ranked once, as that study's trials were.
        """
        start = time.perf_counter()
        per_terms = self.raw(arch)
        n = len(per_terms)
        terms = {k: sum(t[k] for t in per_terms) / n for k in per_terms[0]}
        if self.proxy.reference_terms:
            if self.reference is None:
                raise ProxyError(f"proxy {self.proxy.name!r} ranks against a reference sample; none was built")
            per_repeat = [self.proxy.combine(t, self.reference) for t in per_terms]
            mean_terms = self.proxy.combine(terms, self.reference) if self.average_terms else None
            terms["score"] = sum(per_repeat) / n if mean_terms is None else mean_terms
        else:
            per_repeat = [t["score"] for t in per_terms]
        terms = finite(self.proxy.name, terms)
        return ScoreResult(terms["score"], terms, time.perf_counter() - start, per_repeat, self.last_flops)
