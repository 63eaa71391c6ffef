"""The pick: the search's best students re-scored with more repeats before one is recommended.

A search ranks candidates by one draw of a noisy score (one probe batch, one initialisation).
Among hundreds of candidates the best draw is biased upwards: the winner's curse. Before naming
its student, a search therefore re-scores its ``top`` best distinct students with ``repeats``
probe batches and initialisations in all (the trial's own repeats are reused, the others are the
study's next seeds) and recommends the best mean. For a score ranked against the study's reference
sample (the default) a pick score is the mean raw terms of the repeats, ranked once against that
sample; a study of ``--repeats K`` instead ranks each repeat against its sample (averaged over K
draws) and averages the scores. Each is the better way for its sample (BENCHMARKS.md, "The noise
of one draw"). For any other score, a pick score is what ``--repeats repeats`` gives.

Every pick score is kept in the study, one key per student (``record.PICK``): a pick only adds
scores, so a resume or another worker adds evidence and never drops it. The recommendation
(:func:`recommended_trial`) is the best pick score of the whole study, read from the storage, so
``show``, ``distill``, a resumed search and every worker agree on it.

It costs ``top * (repeats - study repeats)`` scorings. By default ``top`` is sized to the search
(:func:`pick_size`): one student for every 8 the study scored, from 3 to 10, so a 24-trial search
re-scores 3 students (9 scorings) and one of 80 trials or more 10 (30 scorings).
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterable, Mapping

import optuna
from optuna.trial import FrozenTrial, TrialState

from diswot.storage import record

from ._format import plural
from .config import DEFAULT_PICK_REPEATS, DEFAULT_PICK_TOP

if TYPE_CHECKING:  # the scoring side (torch) is imported only when the pick re-scores
    from diswot.spaces import Space

    from .progress import StepProgress
    from .assembly import ScoringSetup

__all__ = [
    "DEFAULT_PICK_REPEATS",
    "DEFAULT_PICK_TOP",
    "pick_report",
    "pick_scores",
    "pick_study",
    "pick_size",
    "recommended_trial",
    "stored_picks",
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
    of the study's COMPLETE trials, from 3 to :data:`DEFAULT_PICK_TOP`."""
    if top is not None:
        return top
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    students = len({t.user_attrs.get(record.ARCH) for t in trials})
    return max(3, min(DEFAULT_PICK_TOP, math.ceil(students / 8)))


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
    top: int = DEFAULT_PICK_TOP,
    repeats: int = DEFAULT_PICK_REPEATS,
    known: Mapping[str, float] | None = None,
    progress: StepProgress | None = None,
) -> dict[str, float]:
    """Pick scores (mean over ``repeats``) of the ``top`` best distinct students of ``trials``.

    ``rescoring(repeats)`` gives the study's scoring with ``repeats`` probe batches and initialisations
    (the same teacher and reference sample), called only when a student is re-scored. ``known``
    holds pick scores computed before (reused, not recomputed); the students to
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
    label = f"the pick: {plural(len(todo), 'student')} re-scored with {repeats} repeats"
    with contextlib.nullcontext(lambda: None) if progress is None else progress(label, len(todo)) as advance:
        _rescore_each(extra, todo, have, repeats, out, advance)
    return out


def _rescore_each(
    extra: ScoringSetup,
    todo: list[FrozenTrial],
    have: int,
    repeats: int,
    out: dict[str, float],
    advance: Callable[[], None],
) -> None:
    """Re-score ``todo`` into ``out`` (arch -> pick score), calling ``advance`` after each."""
    from diswot.proxies import ProxyError

    scorer, proxy = extra.scorer, extra.scorer.proxy
    for t in todo:
        arch = t.user_attrs[record.ARCH]
        try:
            new = scorer.raw(extra.space.decode(arch), repeats=range(have, repeats))
        except ProxyError as exc:
            log.info("the pick left trial %d out: %s", t.number, exc)
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


def stored_picks(study: optuna.Study) -> dict[str, record.PickScore]:
    """The study's pick scores, arch -> the one with the most repeats (a student's later, better
    evidenced score replaces an earlier one; every student ever re-scored stays)."""
    best: dict[str, record.PickScore] = {}
    for found in record.pick_scores(study):
        old = best.get(found.arch)
        if old is None or (found.repeats, found.trial is not None) > (old.repeats, old.trial is not None):
            best[found.arch] = found
    return best


def pick_study(
    study: optuna.Study,
    setup: ScoringSetup,
    *,
    rescoring: Callable[[int], ScoringSetup],
    top: int = DEFAULT_PICK_TOP,
    repeats: int = DEFAULT_PICK_REPEATS,
    progress: StepProgress | None = None,
) -> dict[str, float]:
    """Re-score the study's ``top`` best students (a stored pick score with at least ``repeats`` is
    reused) and store each new pick score under its trial; returns this pick's scores, arch -> score.

    The re-scoring (with ``rescoring``, see :func:`pick_scores`) shows under ``progress``. Stored
    pick scores are only added to, never replaced by fewer repeats: the recommendation over the
    whole study (:func:`recommended_trial`) can only gain evidence.
    """
    if len(study.directions) != 1 or top < 1:
        return {}
    known = {a: p.score for a, p in stored_picks(study).items() if p.repeats >= repeats}
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    scores = pick_scores(setup, trials, rescoring=rescoring, top=top, repeats=repeats, known=known, progress=progress)
    numbers = {t.user_attrs[record.ARCH]: t.number for t in top_candidates(trials, top, same=student_of(setup.space))}
    used = max(repeats, setup.config.repeats)  # with no more repeats than the study's, its own score
    for arch, score in scores.items():
        if arch not in known:
            record.add_pick(study, record.PickScore(numbers[arch], arch, score, used))
    return scores


def _first_trials(trials: Iterable[FrozenTrial]) -> dict[str, FrozenTrial]:
    """Arch -> the earliest of ``trials`` with that arch."""
    first: dict[str, FrozenTrial] = {}
    for t in sorted(trials, key=lambda t: t.number):
        if record.ARCH in t.user_attrs:
            first.setdefault(str(t.user_attrs[record.ARCH]), t)
    return first


def _best_picked(study: optuna.Study, trials: list[FrozenTrial]) -> tuple[FrozenTrial, record.PickScore] | None:
    """The trial of the best stored pick score (ties: more repeats, then the earlier trial)."""
    first = _first_trials(trials)
    picked = [(first[a], p) for a, p in stored_picks(study).items() if a in first]
    if not picked:
        return None
    return min(picked, key=lambda tp: (-tp[1].score, -tp[1].repeats, tp[0].number))


def recommended_trial(study: optuna.Study) -> FrozenTrial | None:
    """The student a search recommends: the best pick score of the whole study, else the best score.

    Among trials of the same arch the earliest is named. ``None`` when nothing completed.
    """
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not trials:
        return None
    best = _best_picked(study, trials) if len(study.directions) == 1 else None
    if best is not None:
        return best[0]
    sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return min(trials, key=lambda t: (sign * float(t.values[0]), t.number))


def top_trials(study: optuna.Study, n: int = 10) -> list[optuna.trial.FrozenTrial]:
    """The ``n`` best distinct students (the earliest trial of each arch), in the order the pick uses:
    pick scores first (the recommended student leads), then the score (the first objective)."""
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    picked = stored_picks(study) if len(study.directions) == 1 else {}

    def order(t: optuna.trial.FrozenTrial) -> tuple[bool, float, int, float, int]:
        found = picked.get(str(t.user_attrs.get(record.ARCH)))
        if found is None:
            return (True, 0.0, 0, sign * float(t.values[0]), t.number)
        return (False, -found.score, -found.repeats, sign * float(t.values[0]), t.number)

    seen: dict[str, optuna.trial.FrozenTrial] = {}
    for t in sorted(trials, key=order):
        seen.setdefault(str(t.user_attrs.get(record.ARCH, f"trial {t.number}")), t)
        if len(seen) == n:
            break
    return list(seen.values())


def _student_row(t: FrozenTrial, picked: Mapping[str, record.PickScore], recommended: int | None) -> dict[str, Any]:
    """One student of :func:`pick_report`: its trial, values, pick score and every user attribute."""
    found = picked.get(str(t.user_attrs.get(record.ARCH)))
    return {
        "trial": t.number,
        "value": t.values[0],
        "values": list(t.values),
        "recommended": t.number == recommended,
        "pick_score": None if found is None else found.score,
        "pick_repeats": None if found is None else found.repeats,
        **t.user_attrs,
    }


def pick_report(study: optuna.Study, n: int = 10) -> dict[str, Any]:
    """What ``diswot show --json`` prints: the recommended trial, the ``n`` best students (each with
    its pick score and repeats, ``None`` where it has none, and every trial user attribute, the
    ``distill_*`` results included) and every stored pick score of the study."""
    single = len(study.directions) == 1
    best = recommended_trial(study) if single else None  # a front recommends no single student
    picked = stored_picks(study) if single else {}
    first = _first_trials(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    return {
        "study": study.study_name,
        "objectives": len(study.directions),
        "recommended": None if best is None else _recommended_row(best, picked),
        "students": [_student_row(t, picked, best.number if best else None) for t in top_trials(study, n)],
        "picks": [
            {
                "trial": first[a].number if a in first else p.trial,
                "arch": a,
                "pick_score": p.score,
                "repeats": p.repeats,
            }
            for a, p in sorted(picked.items(), key=lambda ap: -ap[1].score)
        ],
    }


def _recommended_row(best: FrozenTrial, picked: Mapping[str, record.PickScore]) -> dict[str, Any]:
    """The recommended student of :func:`pick_report`: trial, arch, score and pick score (if any)."""
    found = picked.get(str(best.user_attrs.get(record.ARCH)))
    return {
        "trial": best.number,
        "arch": best.user_attrs.get(record.ARCH),
        "by": "score" if found is None else "pick score",
        "score": best.values[0],
        "pick_score": None if found is None else found.score,
        "pick_repeats": None if found is None else found.repeats,
    }
