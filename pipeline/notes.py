"""optuna-dashboard notes: the search configuration and top students on the study, each trial's arch.

Notes are Markdown saved with :func:`optuna_dashboard.save_note` (study system attributes), so
any storage works and ``diswot dashboard`` shows them next to the trials.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import optuna
from optuna.trial import TrialState

from diswot.storage import dashboard_note_attrs, mask_url, record, trial_storage

from ._format import fmt_count
from .pick import top_trials

__all__ = [
    "StudyNotes",
    "stage_rows",
    "study_note",
    "trial_note",
    "write_study_note",
    "write_trial_note",
]

log = logging.getLogger(__name__)

#: a worker updates the study note at most this often during a search (and always at its end)
NOTE_MIN_SECONDS = 10.0
#: the study note is spaced by at least this many times its last write's duration (<= 2% of the time)
NOTE_COST_FACTOR = 50.0


def _cell(value: Any) -> str:
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    for char in "\\|_*`":  # Markdown: literal text in a table cell
        text = text.replace(char, "\\" + char)
    return text.replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def stage_rows(params: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Group params into stages by the prefix before the last ``.``.

    ``{"stage1.depth": 3, "stage1.width": 64, "stem.width": 16}`` gives the columns
    ``["stage", "depth", "width"]`` and the rows ``[["stage1", 3, 64], ["stem", "-", 16]]``, in
    the params' order. A name without ``.`` is its own stage with the field ``value``.
    """
    stages: dict[str, dict[str, Any]] = {}
    fields: list[str] = []
    for name, value in params.items():
        stage, dot, field = name.rpartition(".")
        if not dot:
            stage, field = name, "value"
        stages.setdefault(stage, {})[field] = value
        if field not in fields:
            fields.append(field)
    rows = [[stage, *(values.get(f, "-") for f in fields)] for stage, values in stages.items()]
    return ["stage", *fields], rows


def trial_note(trial: optuna.trial.FrozenTrial, *, score: float | None = None) -> str:
    """Markdown for one student: its arch string, figures and per-stage table."""
    attrs = trial.user_attrs
    lines = [f"### {attrs.get(record.ARCH, 'trial %d' % trial.number)}", ""]
    figures = []
    if score is not None:
        figures.append(f"score **{score:.6g}**")
    for key, label in ((record.PARAMS, "params"), (record.FLOPS, "FLOPs")):
        if key in attrs:
            figures.append(f"{label} {fmt_count(attrs[key])}")
    if record.LAYERS in attrs:
        figures.append(f"{attrs[record.LAYERS]} layers")
    if figures:
        lines += [" · ".join(figures), ""]
    retried = trial.system_attrs.get("failed_trial")
    if retried is not None:
        lines += [f"Retry of trial {retried}, whose worker died.", ""]
    header, rows = stage_rows(trial.params)
    if rows:
        lines += _table(header, rows)
    note: str = mask_url("\n".join(lines))
    return note


def study_note(study: optuna.Study, config: Mapping[str, Any], *, top: int = 10) -> str:
    """Markdown for the study: the search configuration, trial counts and the current top students."""
    states = [t.state for t in study.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(s)} {s.name.lower()}" for s in TrialState if states.count(s))
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [f"## DisWOT search `{study.study_name}`", "", f"{counts or 'no trials yet'} (updated {now})", ""]
    lines += ["### Configuration", ""]
    lines += _table(["field", "value"], [[k, v] for k, v in config.items()])
    best = top_trials(study, top)
    lines += ["", f"### Top {len(best)} students", ""]
    if best:
        rows = [
            [
                i,
                t.number,
                t.user_attrs.get(record.ARCH, "?"),
                t.values[0],
                fmt_count(t.user_attrs.get(record.PARAMS)),
                fmt_count(t.user_attrs.get(record.FLOPS)),
            ]
            for i, t in enumerate(best, 1)
        ]
        lines += _table(["#", "trial", "arch", "score", "params", "FLOPs"], rows)
    else:
        lines.append("No complete trial yet.")
    note: str = mask_url("\n".join(lines))
    return note


def write_study_note(study: optuna.Study, config: Mapping[str, Any], *, top: int = 10) -> None:
    """Save :func:`study_note` on the study (``optuna_dashboard.save_note``, whose cost grows with
    the number of notes: call it every N trials, not every trial); a storage error is logged."""
    from optuna_dashboard import save_note

    try:
        save_note(study, study_note(study, config, top=top))
    except Exception as exc:  # notes are a convenience: never fail a search for them
        log.warning("could not save the study note: %s", mask_url(str(exc))[:200])


class StudyNotes:
    """The study note of a search: :meth:`write` it at the start and the end, and :meth:`callback`
    rewrites it every ``every`` trials, not more often than every :data:`NOTE_MIN_SECONDS` per
    worker and spaced so that notes take at most 1 / :data:`NOTE_COST_FACTOR` of the worker's time
    (``save_note`` reads every note of the study, so its cost grows with the study).
    """

    def __init__(self, study: optuna.Study, config: Mapping[str, Any], *, every: int) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.study = study
        self.config = config
        self.every = every
        #: when the note was last written, and what that write cost (seconds)
        self.last = time.monotonic()
        self.cost = 0.0

    def write(self) -> None:
        """Write the note now."""
        start = time.monotonic()
        write_study_note(self.study, self.config)
        end = time.monotonic()
        self.last, self.cost = end, end - start

    def callback(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Optuna trial callback: write the note when it is due."""
        wait = max(NOTE_MIN_SECONDS, NOTE_COST_FACTOR * self.cost)
        if (trial.number + 1) % self.every == 0 and time.monotonic() - self.last >= wait:
            self.write()


def _save_new_trial_note(trial: optuna.Trial, body: str) -> None:
    """Save the first note of ``trial`` in optuna-dashboard's format, in O(1) storage calls."""
    storage, study_id, trial_id = trial_storage(trial)
    attrs = dashboard_note_attrs(trial_id, body)
    if attrs is None:  # another optuna-dashboard layout: the public, slower call
        from optuna_dashboard import save_note

        save_note(trial, body)
        return
    for key, value in attrs.items():
        storage.set_study_system_attr(study_id, key, value)


def write_trial_note(trial: optuna.Trial, *, score: float | None = None) -> None:
    """Save :func:`trial_note` on a running trial (once per trial); a storage error is logged, never raised."""
    try:
        storage, _, trial_id = trial_storage(trial)
        frozen = storage.get_trial(trial_id)
        _save_new_trial_note(trial, trial_note(frozen, score=score))
    except Exception as exc:
        log.warning("could not save the note of trial %d: %s", trial.number, mask_url(str(exc))[:200])
