"""The resolved configuration of a scoring run or a search, checked with clear messages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from optuna.study import StudyDirection

from ._choices import DATASETS, DEFAULT_INIT_DRAW, INIT_DRAWS, INITS, PRECISIONS, SEMANTIC_MODES
from .errors import DiswotError

if TYPE_CHECKING:  # the spaces (torch) are imported when a config is made, not when options are parsed
    from diswot.spaces import Limits

__all__ = [
    "CHANGEABLE_FIELDS",
    "DEFAULT_PICK_REPEATS",
    "DEFAULT_PICK_TOP",
    "MIN_REFERENCE_SIZE",
    "reference_size_for",
    "DEFAULT_PROXY",
    "DEFAULT_REFERENCE_SIZE",
    "FIXED_FIELDS",
    "RECORDED_FIELDS",
    "SCORE_FIELDS",
    "SearchConfig",
    "StudyRecord",
    "TEACHER_FIELDS",
    "WorkerOptions",
    "DIRECTIONS",
    "parse_objectives",
    "study_directions",
    "uses_reference",
]

SAMPLERS = ("evolution", "random", "tpe")
#: the score a search uses unless ``--proxy`` says otherwise (README, "Which score?")
DEFAULT_PROXY = "diswot-retest-balance"
#: the most architectures in the reference sample of a rank-aggregated score; a new study sizes its
#: sample to the search's trials (at least :data:`MIN_REFERENCE_SIZE`) unless ``--reference-size`` is given
DEFAULT_REFERENCE_SIZE = 64
MIN_REFERENCE_SIZE = 16
#: the most distinct best students re-scored before a search recommends one (:mod:`.pick`); the
#: pick re-scores one for every 8 of the search's students, at least 3, unless ``pick_top`` is given
DEFAULT_PICK_TOP = 10
#: repeats (probe batches and initialisations) of a pick score, the trial's own included
DEFAULT_PICK_REPEATS = 4

#: the record's key of what a study of several repeats averages: ``"scores"`` (each repeat ranked
#: against the reference sample); a study made before without it averaged the raw terms, and keeps that
AVERAGED = "averaged"

#: fields stored on the study; resuming with any other value is refused (storage.record_config)
RECORDED_FIELDS = (
    "space",
    "teacher",
    "teacher_weights",
    "proxy",
    "dataset",
    "seed",
    "max_params",
    "max_layers",
    "batch_size",
    "repeats",
    "init",
    "init_draw",
    "num_classes",
    "image_size",
    "semantic",
    "precision",
)

#: recorded fields that fix what a trial's params and figures mean: the space (S0 params are not
#: NB201 cells), the class count (the classifier, so the parameter count) and the probe image size
#: (FLOPs and every score); ``--allow-change`` refuses them
FIXED_FIELDS = {
    "space": "the space decides what every trial's params mean",
    "num_classes": "the class count decides each student's classifier, so its parameter count",
    "image_size": "the image size decides each student's FLOPs and scores",
}

#: recorded fields that decide every stored score, the reference sample and the pick scores: a
#: study under another value would rank students by two different scores, so ``--allow-change``
#: refuses them and names a new study instead
SCORE_FIELDS = (
    "teacher",
    "teacher_weights",
    "teacher_features",
    "teacher_classifier",
    "teacher_image_size",
    "proxy",
    "reference_size",
    "dataset",
    "seed",
    "batch_size",
    "repeats",
    "init",
    "init_draw",
    "semantic",
    "precision",
)

#: the fields ``--allow-change`` accepts: the limits, which decide which students are searched but
#: no score (``max_flops`` is recorded when set); ``objectives`` cannot change, they fix the
#: study's directions
CHANGEABLE_FIELDS = tuple(f for f in (*RECORDED_FIELDS, "max_flops") if f not in FIXED_FIELDS and f not in SCORE_FIELDS)

#: teacher fields recorded only when set (``teacher_fingerprint`` always, on new studies), so that
#: studies created before them resume unchanged (:func:`diswot.storage.record_config`'s ``optional``)
TEACHER_FIELDS = ("teacher_features", "teacher_classifier", "teacher_image_size", "teacher_fingerprint")


@dataclass(frozen=True)
class SearchConfig:
    """Everything that decides the scores of a study, plus how the search runs."""

    space: str = "s0"
    teacher: str = "resnet110"
    teacher_weights: str | None = None
    #: the teacher's feature node and classifier module, overriding their discovery
    teacher_features: str | None = None
    teacher_classifier: str | None = None
    #: the teacher's input size (default: its own, from its metadata; README, "Teachers")
    teacher_image_size: int | None = None
    proxy: str = DEFAULT_PROXY
    dataset: str = "cifar100"
    data_dir: str | None = None
    seed: int = 0
    batch_size: int = 64
    repeats: int = 1
    init: str = "gaussian"
    #: how the inits are drawn: ``layer`` (each layer from its own seeded generator: common random
    #: numbers) or ``stream``; ``None``: the study's (``stream`` for one recorded before the choice),
    #: ``layer`` for a new study and outside a study
    init_draw: str | None = None
    device: str = "auto"
    num_classes: int | None = None
    image_size: int | None = None
    semantic: str = "auto"
    precision: str = "fp32"
    max_params: int | None = None
    max_layers: int | None = None
    #: study objectives, the score first (``score``, ``params``, ``flops``, ``latency``)
    objectives: tuple[str, ...] = ("score",)
    max_flops: int | None = None
    sampler: str = "evolution"
    population_size: int = 20
    tournament_size: int = 10
    #: architectures of the reference sample; ``None``: the study's, or sized to the search for a new one
    reference_size: int | None = None
    #: the pick: the best distinct students re-scored with ``pick_repeats`` repeats (0: none;
    #: ``None``: sized to the search, :func:`~.pick.pick_size`)
    pick_top: int | None = None
    pick_repeats: int = DEFAULT_PICK_REPEATS
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from diswot.spaces import get_space

        get_space(self.space)  # raises UnknownNameError listing the valid names
        if self.dataset not in DATASETS:
            raise DiswotError(f"unknown `dataset` {self.dataset!r}; valid: {', '.join(DATASETS)}")
        if self.init not in INITS:
            raise DiswotError(f"unknown `init` {self.init!r}; valid: {', '.join(INITS)}")
        if self.init_draw is not None and self.init_draw not in INIT_DRAWS:
            raise DiswotError(f"unknown `init_draw` {self.init_draw!r}; valid: {', '.join(INIT_DRAWS)}")
        if self.sampler not in SAMPLERS:
            raise DiswotError(f"unknown `sampler` {self.sampler!r}; valid: {', '.join(SAMPLERS)}")
        if self.precision not in PRECISIONS:
            raise DiswotError(f"unknown `precision` {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        if self.semantic not in SEMANTIC_MODES:
            raise DiswotError(f"unknown `semantic` {self.semantic!r}; valid: {', '.join(SEMANTIC_MODES)}")
        for name in ("max_params", "max_layers"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise DiswotError(f"`{name}` must be >= 1 (omit it for the space's default), got {getattr(self, name)}")
        if self.teacher_image_size is not None and self.teacher_image_size < 8:
            raise DiswotError(f"`teacher_image_size` must be >= 8 pixels, got {self.teacher_image_size}")
        if self.reference_size is not None and self.reference_size < 8:
            raise DiswotError(f"`reference_size` must be >= 8, got {self.reference_size}")
        if self.pick_top is not None and self.pick_top < 0:
            raise DiswotError(f"`pick_top` must be >= 0 (0: recommend the best score as it is), got {self.pick_top}")
        for name in ("batch_size", "repeats", "population_size", "tournament_size", "pick_repeats"):
            if getattr(self, name) < 1:
                raise DiswotError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if self.tournament_size > self.population_size:
            raise DiswotError(
                f"`tournament_size` {self.tournament_size} cannot exceed `population_size` {self.population_size}"
            )

    @classmethod
    def from_record(cls, recorded: Mapping[str, Any]) -> SearchConfig:
        """The configuration a study recorded (:meth:`recorded`); fields it does not hold keep their
        defaults (studies recorded before them), keys that are not fields are left out."""
        names = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in recorded.items() if k in names and v is not None}
        if "objectives" in values:
            values["objectives"] = tuple(values["objectives"])
        values.setdefault("init_draw", "stream")  # recorded before the choice: one stream drew every init
        return cls(**values)

    def limits(self) -> Limits:
        """The hard limits: the given ones, else the space's defaults."""
        from diswot.spaces import Limits, get_space

        default = get_space(self.space).default_limits
        return Limits(
            max_params=self.max_params if self.max_params is not None else default.max_params,
            max_layers=self.max_layers if self.max_layers is not None else default.max_layers,
        )

    @property
    def drawn(self) -> str:
        """How the inits are drawn: ``init_draw``, else ``layer`` (a new study's, and outside a study)."""
        return self.init_draw or DEFAULT_INIT_DRAW

    def recorded(self, num_classes: int, semantic: str, teacher: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The fields stored on the study, with the resolved class count and semantic mode.

        ``teacher`` adds the resolved teacher fields (:data:`TEACHER_FIELDS`: its fingerprint, and
        its input size where it differs from the students')."""
        values = asdict(self)
        limits = self.limits()
        values.update(
            num_classes=num_classes,
            semantic=semantic,
            max_params=limits.max_params,
            max_layers=limits.max_layers,
            init_draw=self.drawn,
        )
        recorded = {k: values[k] for k in RECORDED_FIELDS}
        # recorded only when set, so that studies created before these options resume unchanged
        if self.objectives != ("score",):
            recorded["objectives"] = list(self.objectives)
        if self.max_flops is not None:
            recorded["max_flops"] = self.max_flops
        if uses_reference(self.proxy):  # only such studies record it, so older studies resume unchanged
            recorded["reference_size"] = self.reference_size
            if self.repeats > 1:  # what a trial averages over its repeats (studies made before: the terms)
                recorded[AVERAGED] = "scores"
        for name in ("teacher_features", "teacher_classifier"):
            if values[name] is not None:
                recorded[name] = values[name]
        recorded.update({k: v for k, v in (teacher or {}).items() if k in TEACHER_FIELDS and v is not None})
        return recorded


@dataclass(frozen=True)
class WorkerOptions:
    """How this worker runs the study; none of it is recorded on the study."""

    study_name: str = "diswot"
    #: this worker's index: its own sampler seed (the probe batch stays the study's)
    worker_index: int = 0
    #: stop once the study holds this many COMPLETE or PRUNED trials
    max_trials: int | None = None
    #: seconds between heartbeats of a running trial; a silent trial is failed and retried
    heartbeat: int | None = None
    #: silence before a trial is stale (default 2 x heartbeat)
    grace_period: int | None = None
    #: retries of a trial whose worker died
    max_retry: int = 3
    #: update the dashboard's study note every N trials (0: no notes)
    note_every: int = 10
    #: recorded fields that may differ from the study's record when resuming
    allow_change: tuple[str, ...] = ()
    #: score every trial's student, even one the study has scored (for timing the scorer)
    rescore: bool = False

    def __post_init__(self) -> None:
        for name, minimum in (
            ("max_trials", 1),
            ("heartbeat", 1),
            ("grace_period", 1),
            ("max_retry", 0),
            ("note_every", 0),
            ("worker_index", 0),
        ):
            value = getattr(self, name)
            if value is not None and value < minimum:
                raise DiswotError(f"`{name}` must be >= {minimum}, got {value}")
        if self.grace_period is not None and self.heartbeat is None:
            raise DiswotError("`grace_period` needs `heartbeat` SECONDS")

    @property
    def grace(self) -> int | None:
        """The grace period in force: the given one, else twice the heartbeat (None without one)."""
        return self.grace_period or (2 * self.heartbeat if self.heartbeat else None)


@dataclass(frozen=True)
class StudyRecord:
    """What a study recorded (``diswot:config``), typed: its :class:`SearchConfig` and the resolved
    teacher's fingerprint (``None`` for studies recorded before it)."""

    config: SearchConfig
    teacher_fingerprint: str | None = None

    @classmethod
    def read(cls, recorded: Mapping[str, Any] | None) -> StudyRecord | None:
        """The record of a study's stored configuration; ``None`` when it has none (a study from elsewhere)."""
        if not recorded:
            return None
        fingerprint = recorded["teacher_fingerprint"] if "teacher_fingerprint" in recorded else None
        return cls(SearchConfig.from_record(recorded), fingerprint)


def reference_size_for(n_trials: int | None) -> int:
    """The reference sample of a new study: as many architectures as its first run's trials, from
    :data:`MIN_REFERENCE_SIZE` to :data:`DEFAULT_REFERENCE_SIZE` (the most without ``n_trials``).

    The sample is drawn exactly as the evolutionary search draws its first candidates, so those
    trials reuse its scores: a short search pays for little more than its own students.
    """
    if n_trials is None:
        return DEFAULT_REFERENCE_SIZE
    return max(MIN_REFERENCE_SIZE, min(DEFAULT_REFERENCE_SIZE, n_trials))


def uses_reference(proxy: str) -> bool:
    """Whether ``proxy`` ranks against a reference sample stored in the study."""
    from diswot.proxies import PROXIES

    return proxy in PROXIES and bool(PROXIES.get(proxy).reference_terms)


#: every objective a search can have and its direction; the score always comes first
DIRECTIONS: dict[str, StudyDirection] = {
    "score": StudyDirection.MAXIMIZE,
    "params": StudyDirection.MINIMIZE,
    "flops": StudyDirection.MINIMIZE,
    "latency": StudyDirection.MINIMIZE,
}


def parse_objectives(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"score,params"`` -> ``("score", "params")``; the score must come first, no repeats."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text)]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in DIRECTIONS]
    if unknown:
        raise DiswotError(f"`objectives`: unknown {', '.join(map(repr, unknown))}; valid: {', '.join(DIRECTIONS)}")
    if not names or names[0] != "score" or len(set(names)) != len(names):
        raise DiswotError(
            f"`objectives` {','.join(names) or repr(text)}: give score first and each objective once, "
            "e.g. score,params or score,flops,latency"
        )
    return tuple(names)


def study_directions(objectives: Sequence[str]) -> list[StudyDirection]:
    """The study directions of ``objectives`` (score maximised, costs minimised)."""
    return [DIRECTIONS[name] for name in objectives]
