"""The reference sample of a rank-aggregated score: drawn once, scored once, stored in the study.

A proxy with ``reference_terms`` (``diswot-plus``) ranks each candidate's raw terms against the
raw terms of a fixed, seeded sample of the search space (:class:`~.proxies.Reference`). A search
scores that sample when it creates the study and stores it as the study's system attribute
``record.REFERENCE``; a resumed study and every other worker read it back, so a trial's value
never depends on the order in which trials ran.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping

import optuna

from diswot.proxies import RETEST, ProxyError, Reference
from diswot.spaces import ArchError, Limits, Space
from diswot.storage import record

from ._scoped import optuna_verbosity
from .errors import DiswotError
from .scoring import Scorer

__all__ = [
    "CACHE_ENV",
    "ReferenceCache",
    "Retest",
    "build_reference",
    "cache_dir",
    "reference_archs",
    "study_reference",
]

#: the folder where ``score`` and ``rank`` keep the reference samples they scored (default
#: ``$XDG_CACHE_HOME/diswot``, else ``~/.cache/diswot``)
CACHE_ENV = "DISWOT_CACHE"

log = logging.getLogger(__name__)


def reference_archs(
    space: Space, limits: Limits, num_classes: int, *, size: int, sampler: optuna.samplers.BaseSampler
) -> list[Hashable]:
    """``size`` distinct architectures within ``limits``, drawn by ``sampler`` in a throw-away
    in-memory study (the search passes its evolutionary sampler held in its random phase: random,
    repaired by shrinking mutations when over the limits).

    A small space under tight limits may hold fewer: then every distinct one found (at least 8).
    """
    if size < 8:
        raise DiswotError(f"reference_size must be at least 8 (a rank needs a sample), got {size}")
    with optuna_verbosity(optuna.logging.WARNING):  # no "new study created in memory" line
        study = optuna.create_study(sampler=sampler)
    archs: dict[Hashable, None] = {}
    for _ in range(20 * size):
        trial = study.ask()
        try:
            arch = space.suggest(trial)
        except ArchError:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        study.tell(trial, 0.0)
        if space.check(arch, limits, num_classes) is None:
            archs.setdefault(arch, None)
            if len(archs) == size:
                return list(archs)
    if len(archs) >= 8:  # a small space under tight limits: all the distinct students it has
        log.info(
            "reference sample: %d distinct %s architectures within the limits (of %d asked)",
            len(archs),
            space.name,
            size,
        )
        return list(archs)
    raise DiswotError(
        f"found only {len(archs)} distinct {space.name} architectures within the limits for a reference sample "
        f"(at least 8 needed); relax `max_params`/`max_layers`"
    )


@dataclass
class Retest:
    """The second draw of a reference sample (:attr:`~diswot.proxies.Proxy.retest_terms`): the
    study's scoring with one more repeat (``make``, built when first needed), scored on that repeat."""

    make: Callable[[], Scorer]
    repeat: int
    _scorer: Scorer | None = None

    def terms(self, arch: Hashable) -> dict[str, float]:
        """``arch``'s retest terms, each named ``term@retest``."""
        if self._scorer is None:
            self._scorer = self.make()
        return {k + RETEST: v for k, v in self._scorer.retest(arch, self.repeat).items()}


def build_reference(
    scorer: Scorer,
    archs: list[Hashable],
    *,
    on_arch: Callable[[], None] | None = None,
    known: Mapping[str, Mapping[str, float] | None] | None = None,
    on_scored: Callable[[int, str, dict[str, float] | None], None] | None = None,
    retest: Retest | None = None,
) -> Reference:
    """Score ``archs`` (mean raw terms over the repeats); architectures that fail are left out.

    Every raw term is kept, with the FLOPs (``flops``), so that a trial of a reference architecture
    reuses them instead of scoring it again (:class:`~.search.SearchObjective`); with ``retest``,
    the proxy's retest terms on a second draw too. ``known`` holds architectures scored before
    (arch -> terms, None: failed), taken as they are; ``on_scored(i, arch, terms)`` is told each new
    one, so that an interrupted sample can resume.
    """
    kept: list[str] = []
    values: dict[str, list[float]] = {}
    for i, arch in enumerate(archs):
        encoded = scorer.space.encode(arch)
        try:
            if known and encoded in known:
                terms = dict(known[encoded] or {})
            else:
                terms = _terms(scorer, arch, i, on_scored, retest)
        finally:
            if on_arch is not None:
                on_arch()
        if not terms:
            continue
        kept.append(encoded)
        for k, v in terms.items():
            values.setdefault(k, []).append(v)
    if len(kept) < 8:
        raise DiswotError(f"only {len(kept)} of {len(archs)} reference architectures could be scored; need 8")
    return Reference(tuple(kept), values)


def _terms(
    scorer: Scorer,
    arch: Hashable,
    index: int,
    on_scored: Callable[[int, str, dict[str, float] | None], None] | None,
    retest: Retest | None = None,
) -> dict[str, float]:
    """The mean raw terms and FLOPs of ``arch`` (with ``retest``, its retest terms; empty when it
    cannot be scored), told to ``on_scored``."""
    encoded = scorer.space.encode(arch)
    try:
        per_repeat = scorer.raw(arch)
        flops = float(scorer.last_flops or 0)
        again = retest.terms(arch) if retest is not None else {}
    except ProxyError as exc:
        log.info("reference %s left out: %s", encoded, exc)
        terms: dict[str, float] = {}
    else:
        terms = {k: sum(t[k] for t in per_repeat) / len(per_repeat) for k in per_repeat[0]}
        terms[record.FLOPS] = flops
        terms.update(again)
    if on_scored is not None:
        on_scored(index, str(encoded), terms or None)
    return terms


def study_reference(study: optuna.Study, make: Callable[[], Reference]) -> Reference:
    """The study's stored reference sample, or ``make()``'s, stored first (the stored one wins a race)."""
    return Reference.from_json(record.share_reference_sample(study, lambda: make().to_json()))


def cache_dir() -> Path:
    """The cache folder: ``$DISWOT_CACHE``, else ``$XDG_CACHE_HOME/diswot``, else ``~/.cache/diswot``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "diswot"


@dataclass(frozen=True)
class ReferenceCache:
    """Reference samples scored outside a study (``score``, ``rank``), one small JSON file each.

    A file is named by a hash of what decides the sample's raw terms (space, teacher and its
    weights, probe batch, proxy, limits, size: :meth:`~.assembly.ReferenceSample.key`) and holds
    that key, so a sample is reused only for exactly the same scoring.
    """

    directory: Path

    def path(self, key: Mapping[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
        return self.directory / "reference" / f"{digest[:32]}.json"

    def load(self, key: Mapping[str, Any]) -> Reference | None:
        """The sample stored under ``key``, or ``None`` (none, or an unreadable file)."""
        try:
            doc = json.loads(self.path(key).read_text())
            if doc.get("key") != json.loads(json.dumps(key, default=str)):
                return None
            return Reference.from_json(doc["reference"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def store(self, key: Mapping[str, Any], reference: Reference) -> None:
        """Keep ``reference`` under ``key``; a cache that cannot be written is logged, not an error."""
        path = self.path(key)
        doc = {"key": key, "reference": reference.to_json()}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(doc, default=str))
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("reference sample not cached in %s: %s", path.parent, exc)
