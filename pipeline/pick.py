"""The pick: the search's best students re-scored with more repeats before one is recommended.

A search ranks candidates by one draw of a noisy score (one probe batch, one initialisation).
Among hundreds of candidates the best draw is biased upwards: the winner's curse. Before naming
its student, a search therefore re-scores its ``top`` best distinct students with ``repeats``
probe batches and initialisations in all (the trial's own repeats are reused, the others are the
study's next seeds) and recommends the best mean. A confirmed score is exactly what a study with
``--repeats repeats`` would have given the student; it is stored in the study
(``record.PICK``), so ``show``, ``distill`` and a resumed search agree on the pick.

It costs ``top * (repeats - study repeats)`` scorings. By default ``top`` is sized to the search
(:func:`pick_size`): one student for every 8 the study scored, from 3 to 10, so a 24-trial search
confirms 3 students (9 scorings) and one of 80 trials or more confirms 10 (30 scorings).
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterable, Mapping

import optuna
from optuna.trial import FrozenTrial, TrialState

from diswot.storage import record

from .config import DEFAULT_CONFIRM_REPEATS, DEFAULT_CONFIRM_TOP

if TYPE_CHECKING:  # the scoring side (torch) is imported only when a confirmation runs
    from diswot.spaces import Space

    from .progress import StepProgress
    from .assembly import ScoringSetup

__all__ = [
    "DEFAULT_CONFIRM_REPEATS",
    "DEFAULT_CONFIRM_TOP",
    "pick_scores",
    "pick_study",
    "pick_size",
    "confirmed_scores",
    "recommended_trial",
    "student_of",
    "top_candidates",
    "top_trials",
]

log = logging.getLogger(__name__)


def top_candidates(
    trials: Iterable[FrozenTrial], top: int, *, same: Callable[[str], Hashable] | None = None
) -> list[FrozenTrial]:
    """The ``top`` best COMPLETE single-objective trials of distinct students, best first (ties: earlier).

    ``same`` maps an arch string to its student (:func:`student_of`): equivalent archs build the
    same network and score the same, so only the first of them is a candidate.
    """
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None and record.ARCH in t.user_attrs]
    seen: dict[Hashable, FrozenTrial] = {}
    for t in sorted(done, key=lambda t: (-float(t.values[0]), t.number)):
        arch = t.user_attrs[record.ARCH]
        seen.setdefault(arch if same is None else same(arch), t)
        if len(seen) == top:
            break
    return list(seen.values())


def pick_size(study: optuna.Study, top: int | None) -> int:
    """The students the pick re-scores: ``top`` when given, else one for every 8 distinct students
    of the study's COMPLETE trials, from 3 to :data:`DEFAULT_CONFIRM_TOP`."""
    if top is not None:
        return top
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    students = len({t.user_attrs.get(record.ARCH) for t in trials})
    return max(3, min(DEFAULT_CONFIRM_TOP, math.ceil(students / 8)))


def student_of(space: Space) -> Callable[[str], Hashable]:
    """Arch string -> the space's representative of its equivalent archs (``Space.representative``)."""

    def student(arch: str) -> Hashable:
        return str(space.encode(space.representative(space.decode(arch))))

    return student


def pick_scores(
    setup: ScoringSetup,
    trials: Iterable[FrozenTrial],
    *,
    rescoring: Callable[[int], ScoringSetup],
    top: int = DEFAULT_CONFIRM_TOP,
    repeats: int = DEFAULT_CONFIRM_REPEATS,
    known: Mapping[str, float] | None = None,
    progress: StepProgress | None = None,
) -> dict[str, float]:
    """Confirmed scores (mean over ``repeats``) of the ``top`` best distinct students of ``trials``.

    ``rescoring(repeats)`` gives the study's scoring with ``repeats`` probe batches and initialisations
    (the same teacher and reference sample), called only when a student is re-scored. ``known``
    holds confirmed scores computed before (reused, not recomputed); the students to
    re-score are counted under ``progress`` (:mod:`.progress`). A student whose
    extra repeat fails to score is left out with a log line: it cannot be recommended.
    """
    have = setup.config.repeats
    candidates = top_candidates(trials, top, same=student_of(setup.space))
    out = {a: float(v) for a, v in (known or {}).items() if a in {t.user_attrs[record.ARCH] for t in candidates}}
    todo = [t for t in candidates if t.user_attrs[record.ARCH] not in out]
    if repeats <= have:
        out.update({t.user_attrs[record.ARCH]: float(t.values[0]) for t in todo})
        return out
    if not todo:
        return out
    extra = rescoring(repeats)
    label = f"the pick: {len(todo)} students re-scored with {repeats} repeats"
    with contextlib.nullcontext(lambda: None) if progress is None else progress(label, len(todo)) as advance:
        _confirm_each(extra, todo, have, repeats, out, advance)
    return out


def _confirm_each(
    extra: ScoringSetup,
    todo: list[FrozenTrial],
    have: int,
    repeats: int,
    out: dict[str, float],
    advance: Callable[[], None],
) -> None:
    """Re-score ``todo`` into ``out`` (arch -> confirmed score), calling ``advance`` after each."""
    from diswot.proxies import ProxyError

    scorer, proxy = extra.scorer, extra.scorer.proxy
    for t in todo:
        arch = t.user_attrs[record.ARCH]
        try:
            new = scorer.raw(extra.space.decode(arch), repeats=range(have, repeats))
        except ProxyError as exc:
            log.info("confirming trial %d left it out: %s", t.number, exc)
            continue
        finally:
            advance()
        if proxy.reference_terms:
            terms = {
                k: (have * float(t.user_attrs[k]) + sum(r[k] for r in new)) / repeats for k in proxy.reference_terms
            }
            reference = scorer.reference
            if reference is None:
                raise ValueError(f"proxy {proxy.name!r} ranks against a reference sample; attach the study's first")
            score = proxy.combine(terms, reference)
        else:
            score = (have * float(t.values[0]) + sum(r["score"] for r in new)) / repeats
        if math.isfinite(score):
            out[arch] = float(score)


def confirmed_scores(study: optuna.Study) -> dict[str, Any] | None:
    """The study's stored confirmation (``{"repeats": R, "scores": {arch: score}}``), if any."""
    stored: dict[str, Any] | None = record.pick(study)
    return stored


def pick_study(
    study: optuna.Study,
    setup: ScoringSetup,
    *,
    rescoring: Callable[[int], ScoringSetup],
    top: int = DEFAULT_CONFIRM_TOP,
    repeats: int = DEFAULT_CONFIRM_REPEATS,
    progress: StepProgress | None = None,
) -> dict[str, float]:
    """Confirm the study's ``top`` best students (reusing stored confirmations) and store the result;
    the re-scoring (with ``rescoring``, see :func:`pick_scores`) shows under ``progress``."""
    if len(study.directions) != 1 or top < 1:
        return {}
    stored = confirmed_scores(study)
    known = stored["scores"] if stored and stored.get("repeats") == repeats else None
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    scores = pick_scores(setup, trials, rescoring=rescoring, top=top, repeats=repeats, known=known, progress=progress)
    if scores:
        record.set_pick(study, repeats, scores)
    return scores


def recommended_trial(study: optuna.Study) -> FrozenTrial | None:
    """The student a single-objective search recommends: the best confirmed score, else the best score.

    Among trials of the same arch the earliest is named. ``None`` when nothing completed.
    """
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not trials:
        return None
    maximise = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    stored = confirmed_scores(study)
    if stored:
        scores: dict[str, float] = stored["scores"]
        confirmed = [t for t in trials if t.user_attrs.get(record.ARCH) in scores]
        if confirmed:
            return min(confirmed, key=lambda t: (-scores[t.user_attrs[record.ARCH]], t.number))
    sign = -1.0 if maximise else 1.0
    return min(trials, key=lambda t: (sign * float(t.values[0]), t.number))


def top_trials(study: optuna.Study, n: int = 10) -> list[optuna.trial.FrozenTrial]:
    """The ``n`` best distinct students (the earliest trial of each arch), in the order the pick uses:
    confirmed scores first (the recommended student leads), then the score (the first objective)."""
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    stored = confirmed_scores(study) if len(study.directions) == 1 else None
    confirmed: dict[str, float] = stored["scores"] if stored else {}

    def order(t: optuna.trial.FrozenTrial) -> tuple[int, float, float, int]:
        score = confirmed.get(str(t.user_attrs.get(record.ARCH)))
        return (score is None, sign * (score or 0.0), sign * float(t.values[0]), t.number)

    seen: dict[str, optuna.trial.FrozenTrial] = {}
    for t in sorted(trials, key=order):
        seen.setdefault(str(t.user_attrs.get(record.ARCH, f"trial {t.number}")), t)
        if len(seen) == n:
            break
    return list(seen.values())
