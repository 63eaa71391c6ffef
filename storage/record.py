"""The study record: every key diswot writes on a study or a trial, and the typed functions that
read and write them.

A study holds, besides Optuna's own data:

- study user attributes :data:`CONFIG` (the configuration it was created with) and :data:`CHANGES`
  (accepted changes of that configuration);
- study system attributes :data:`REFERENCE` (the scored reference sample of a rank-aggregated
  score) and, one per re-scored student, :data:`PICK` + trial number (the pick's score of that
  trial's student and its repeats; studies made before hold them all in :data:`LEGACY_PICK`);
- trial system attributes :data:`WORKER` (the worker running the trial), :data:`HEARTBEAT` (its
  last beat where Optuna keeps none) and :data:`LINEAGE` (the sampler's origin and parent);
- trial user attributes :data:`ARCH`, :data:`PARAMS`, :data:`LAYERS`, :data:`FLOPS`, the score and
  its terms (named by the proxy: :data:`SCORE` first), :data:`SCORE_SECONDS`, :data:`LATENCY`,
  :data:`FAIL_REASON`, :data:`REUSED_FROM` and, after ``distill``, the ``distill_*`` figures
  (:data:`DISTILL_PREFIX`).

The key strings are stored data: a study written by one release is read by the next, so they
never change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import optuna
from optuna.trial import FrozenTrial

from ._optuna import study_storage

__all__ = [
    "ARCH",
    "CHANGES",
    "CONFIG",
    "DISTILL_ARTIFACT",
    "DISTILL_EPOCHS",
    "DISTILL_TOP1",
    "DISTILL_TOP5",
    "DISTILL_FIGURES",
    "DISTILL_PREFIX",
    "FAIL_REASON",
    "FLOPS",
    "HEARTBEAT",
    "LEGACY_PICK",
    "LATENCY",
    "LAYERS",
    "LINEAGE",
    "PARAMS",
    "PICK",
    "PickScore",
    "REFERENCE",
    "REFERENCE_PART",
    "REUSED_FROM",
    "SCORE",
    "SCORE_SECONDS",
    "WORKER",
    "arch",
    "distill_result",
    "objective_attr",
    "add_pick",
    "pick_scores",
    "add_reference_part",
    "reference_parts",
    "reference_sample",
    "share_reference_sample",
    "study_config",
]

# study user attributes
#: the configuration the study was created with (``storage.record_config``)
CONFIG = "diswot:config"
#: accepted changes of mutable fields, ``[{"time", "changes"}, ...]``
CHANGES = "diswot:config_changes"

# study system attributes
#: the scored reference sample of a rank-aggregated score (``proxies.Reference.to_json``)
REFERENCE = "diswot:reference"
#: prefix of one architecture of a reference sample being scored: ``REFERENCE_PART + str(i)`` holds
#: ``{"arch", "terms"}`` of the sample's i-th architecture (``terms`` None: it could not be scored),
#: so that an interrupted sample resumes where it stopped
REFERENCE_PART = "diswot:reference_part:"
#: prefix of the pick's keys: ``PICK + str(trial number)`` holds ``{"arch", "score", "repeats"}``,
#: the trial's student re-scored by the pick (one key per student, so workers never overwrite each other)
PICK = "diswot:pick:"
#: the pick of studies made before: ``{"repeats": R, "scores": {arch: score}}`` (read, never written)
LEGACY_PICK = "diswot:confirmed"

# trial system attributes
#: the worker running the trial, ``{"host", "pidns", "pid", "start"}``
WORKER = "diswot:worker"
#: the last heartbeat of a journal/gRPC trial (seconds since the epoch)
HEARTBEAT = "diswot:heartbeat"
#: where the evolutionary sampler's candidate came from, ``{"origin", "parent"}``
LINEAGE = "diswot:lineage"

# trial user attributes
#: the student, as its space's canonical arch string
ARCH = "arch"
#: the student's parameter count
PARAMS = "params"
#: the student's layer count (the space's definition)
LAYERS = "layers"
#: the student's FLOPs per image
FLOPS = "flops"
#: the proxy's score (its other terms are stored under the names the proxy gives them)
SCORE = "score"
#: seconds spent scoring the student (0 when the score was reused)
SCORE_SECONDS = "score_seconds"
#: median milliseconds of one forward pass of the probe batch (objective ``latency``)
LATENCY = "latency_ms"
#: why a trial failed
FAIL_REASON = "fail_reason"
#: the trial whose stored score a trial of the same student took
REUSED_FROM = "reused_from"
#: prefix of the attributes ``distill`` writes on the trial it trained
DISTILL_PREFIX = "distill_"
#: the distilled student's top-1 and top-5 accuracy and its epochs
DISTILL_TOP1, DISTILL_TOP5, DISTILL_EPOCHS = (DISTILL_PREFIX + n for n in ("top1", "top5", "epochs"))
#: the trained student's checkpoint, an Optuna artifact id
DISTILL_ARTIFACT = "distill_artifact"

#: the figures ``distill`` writes on a trial, in the order tables show them
DISTILL_FIGURES = (DISTILL_TOP1, DISTILL_TOP5, DISTILL_EPOCHS, DISTILL_PREFIX + "teacher")


def distill_result(
    *, top1: float, top5: float, epochs: int, teacher: str, teacher_weights: str | None, loss: list[float]
) -> dict[str, Any]:
    """The trial user attributes of a finished distillation: its accuracies, epochs, teacher and losses."""
    values = {
        "top1": top1,
        "top5": top5,
        "epochs": epochs,
        "teacher": teacher,
        "teacher_weights": teacher_weights,
        "loss": loss,
    }
    return {DISTILL_PREFIX + name: value for name, value in values.items()}


#: the trial user attribute that holds each objective's value
_OBJECTIVE_ATTRS = {"score": SCORE, "params": PARAMS, "flops": FLOPS, "latency": LATENCY}


def objective_attr(objective: str) -> str:
    """The trial user attribute of a study objective (``latency`` -> :data:`LATENCY`)."""
    return _OBJECTIVE_ATTRS[objective]


def arch(trial: FrozenTrial) -> str | None:
    """The arch string of a trial's student, if it got that far."""
    value = trial.user_attrs.get(ARCH)
    return None if value is None else str(value)


def study_config(storage: optuna.storages.BaseStorage, study_name: str) -> dict[str, Any]:
    """The configuration recorded on the study ``study_name`` (empty when it does not exist or has
    none); creates nothing."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return {}
    config = storage.get_study_user_attrs(study_id).get(CONFIG) or {}
    return config if isinstance(config, dict) else {}


def _system_attr(study: optuna.Study, key: str) -> Any:
    storage, study_id = study_storage(study)
    return storage.get_study_system_attrs(study_id).get(key)


def reference_sample(study: optuna.Study) -> Any:
    """The study's stored reference sample (JSON), or None."""
    return _system_attr(study, REFERENCE)


def reference_parts(study: optuna.Study) -> dict[str, dict[str, float] | None]:
    """The architectures of an unfinished reference sample scored so far: arch -> its terms (None:
    it could not be scored)."""
    storage, study_id = study_storage(study)
    parts: dict[str, dict[str, float] | None] = {}
    for key, value in storage.get_study_system_attrs(study_id).items():
        if key.startswith(REFERENCE_PART) and isinstance(value, dict) and isinstance(value.get("arch"), str):
            terms = value.get("terms")
            parts[value["arch"]] = dict(terms) if isinstance(terms, dict) else None
    return parts


def add_reference_part(study: optuna.Study, index: int, arch: str, terms: Mapping[str, float] | None) -> None:
    """Store the reference sample's ``index``-th architecture as scored (``terms`` None: it failed)."""
    storage, study_id = study_storage(study)
    value: dict[str, Any] = {"arch": arch, "terms": None if terms is None else dict(terms)}
    storage.set_study_system_attr(study_id, f"{REFERENCE_PART}{index}", value)


def share_reference_sample(study: optuna.Study, make: Callable[[], Any]) -> Any:
    """The study's reference sample: the stored one, else ``make()``'s, stored (when another worker
    stored one meanwhile, that one wins, so every worker ranks against the same sample)."""
    stored = reference_sample(study)
    if stored is None:
        made = make()
        stored = reference_sample(study)
        if stored is None:
            storage, study_id = study_storage(study)
            storage.set_study_system_attr(study_id, REFERENCE, made)
            return made
    return stored


@dataclass(frozen=True)
class PickScore:
    """One student's pick score: the mean of ``repeats`` scorings of trial ``trial``'s ``arch``
    (``trial`` is None for a study made before pick scores were kept per trial)."""

    trial: int | None
    arch: str
    score: float
    repeats: int


def _pick_score(trial: int | None, arch: Any, value: Any, repeats: Any) -> PickScore | None:
    """A stored pick score, or None when the stored value is not one (a foreign or broken key)."""
    ok = isinstance(arch, str) and isinstance(value, (int, float)) and isinstance(repeats, int)
    return PickScore(trial, arch, float(value), repeats) if ok and math.isfinite(value) else None


def pick_scores(study: optuna.Study) -> list[PickScore]:
    """Every pick score stored on the study (one study read), the legacy record's included."""
    attrs = study_storage(study)[0].get_study_system_attrs(study_storage(study)[1])
    found: list[PickScore | None] = []
    for key, value in attrs.items():
        if key.startswith(PICK) and key[len(PICK) :].isdigit() and isinstance(value, dict):
            found.append(
                _pick_score(int(key[len(PICK) :]), value.get("arch"), value.get("score"), value.get("repeats"))
            )
    legacy = attrs.get(LEGACY_PICK)
    if isinstance(legacy, dict) and isinstance(legacy.get("scores"), dict):
        found += [_pick_score(None, a, v, legacy.get("repeats")) for a, v in legacy["scores"].items()]
    return [p for p in found if p is not None]


def add_pick(study: optuna.Study, pick: PickScore) -> None:
    """Store one student's pick score under its trial's key (a key written by two workers at once gets
    the same value: a pick score is deterministic)."""
    if pick.trial is None:
        raise ValueError("a pick score is stored under its trial's number")
    storage, study_id = study_storage(study)
    value: dict[str, Any] = {"arch": pick.arch, "score": pick.score, "repeats": pick.repeats}
    storage.set_study_system_attr(study_id, f"{PICK}{pick.trial}", value)
