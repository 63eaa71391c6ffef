"""One study handle: a DisWOT study, its typed record, its trials, pick and front, and its students.

``Search.open(config, storage, study_name=...)`` is the handle of a search that :meth:`Search.run`
creates or resumes; ``Search.load(storage, study_name)`` reads an existing study and creates
nothing. Either gives what the commands do: the trials (``diswot search``), the pick and the best
students, the Pareto front and budgets (``diswot show``), a student as an ``nn.Module`` (with its
distilled weights once distilled), distillation (``diswot distill``) and export (``diswot export``).
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from diswot.storage import default_artifact_dir, mask_url, open_storage, record, storage_url

from .config import SearchConfig, StudyRecord
from .errors import DiswotError
from .pick import pick_report, recommended_trial, top_trials

if TYPE_CHECKING:  # torch is imported when a student is built, not when a study is read
    from torch import nn

    from .distill import DistillOptions, DistillPlan, DistillResult
    from .distributed import DistEnv
    from .export import ExportResult
    from .progress import StepProgress
    from .search import SearchHooks, TrialCallback
    from .training import Reporter

__all__ = ["Search", "load_existing_study"]


def load_existing_study(storage: str | None, study_name: str) -> optuna.Study:
    """Load a study, or raise a one-line error listing the studies that do exist; creates no storage."""
    url = storage_url(storage)
    backend = open_storage(url, must_exist=True)
    names = [s.study_name for s in optuna.get_all_study_summaries(backend, include_best_trial=False)]
    if study_name not in names:
        listed = ", ".join(names) if names else "none"
        raise DiswotError(f"no study {study_name!r} in {mask_url(url)}; studies there: {listed}")
    return optuna.load_study(study_name=study_name, storage=backend)


class Search:
    """The handle of one study; make it with :meth:`open` or :meth:`load`."""

    def __init__(
        self,
        *,
        storage: str | None,
        study_name: str,
        config: SearchConfig | None = None,
        study: optuna.Study | None = None,
        teacher: nn.Module | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.storage = storage_url(storage)
        self.study_name = study_name
        self._config = config
        self._study = study
        self._teacher = teacher
        self._options = dict(options or {})

    @classmethod
    def open(
        cls,
        config: SearchConfig,
        storage: str | None = None,
        *,
        study_name: str = "diswot",
        teacher: nn.Module | None = None,
        **options: Any,
    ) -> Search:
        """The handle of the search of ``config`` in ``storage`` (default ``$DISWOT_STORAGE``, else
        ``sqlite:///diswot.db``): :meth:`run` creates the study or resumes it (its record checked
        against ``config``). ``teacher`` is a module to distil from, named ``config.teacher``;
        ``options`` are the worker's (:class:`~.study.WorkerOptions`: ``max_trials``, ``heartbeat``, ...)."""
        return cls(storage=storage, study_name=study_name, config=config, teacher=teacher, options=options)

    @classmethod
    def load(cls, storage: str | None = None, study_name: str = "diswot") -> Search:
        """The handle of the existing study ``study_name``; a missing storage or study is one line, and nothing is created."""
        study = load_existing_study(storage, study_name)
        return cls(storage=storage, study_name=study_name, study=study)

    # -- the study and its record -------------------------------------------------------------------

    @property
    def study(self) -> optuna.Study:
        """The Optuna study (read from the storage the first time; a search opened with :meth:`open`
        exists once :meth:`run` has run, or when it is resumed)."""
        if self._study is None:
            self._study = load_existing_study(self.storage, self.study_name)
        return self._study

    @property
    def record(self) -> StudyRecord | None:
        """The configuration the study recorded, typed (``None`` for a study made by other tools)."""
        return StudyRecord.read(self.study.user_attrs.get(record.CONFIG))

    @property
    def config(self) -> SearchConfig:
        """The search's configuration: the one given to :meth:`open`, else the study's record."""
        if self._config is not None:
            return self._config
        recorded = self.record
        if recorded is None:
            raise DiswotError(f"study {self.study_name!r} records no configuration ({record.CONFIG})")
        return recorded.config

    def run(
        self,
        n_trials: int = 100,
        *,
        timeout: float | None = None,
        callbacks: Sequence[TrialCallback] = (),
        progress: bool | StepProgress = True,
        pick: bool = True,
        study_trials: int | None = None,
        hooks: SearchHooks | None = None,
    ) -> optuna.Study:
        """Run (or resume) ``n_trials`` trials and the pick (:func:`~.search.run_search`); returns the study."""
        from .search import SearchHooks, run_search

        self._study = run_search(
            self.config,
            self.storage,
            n_trials=n_trials,
            timeout=timeout,
            study_name=self.study_name,
            callbacks=callbacks,
            teacher=self._teacher,
            progress=progress,
            pick=pick,
            study_trials=study_trials,
            hooks=hooks or SearchHooks(),
            **self._options,
        )
        return self._study

    # -- the pick, the best students, the front -----------------------------------------------------

    def recommended_trial(self) -> FrozenTrial | None:
        """The trial the search recommends (:func:`~.pick.recommended_trial`): the best pick score."""
        return recommended_trial(self.study)

    def top_trials(self, n: int = 10) -> list[FrozenTrial]:
        """The ``n`` best distinct students, in the pick's order (:func:`~.pick.top_trials`)."""
        return top_trials(self.study, n)

    def top_rows(self, n: int = 10) -> list[dict[str, Any]]:
        """The best students as JSON rows: trial, value and user attributes."""
        return [{"trial": t.number, "value": t.values[0], **dict(t.user_attrs)} for t in self.top_trials(n)]

    def pick_report(self, n: int = 10) -> dict[str, Any]:
        """What ``diswot show --json`` prints (:func:`~.pick.pick_report`): the recommended trial, the
        ``n`` best students with their pick scores, and every stored pick score."""
        return pick_report(self.study, n)

    def score_weights(self) -> dict[str, float]:
        """The weights the study's score takes from its stored reference sample, by term: for the
        default, the teacher's weights of the two size counts. Empty for a score without them, or
        before the study's reference sample is stored."""
        from diswot.proxies import Reference, get_proxy

        stored = record.reference_sample(self.study)
        if stored is None:
            return {}
        weights: dict[str, float] = get_proxy(self.config.proxy).reference_weights(Reference.from_json(stored))
        return weights

    def pareto_front(self) -> list[FrozenTrial]:
        """The Pareto front of a multi-objective study, best score first (``diswot show --pareto``)."""
        from .pareto import pareto_front

        if len(self.study.directions) == 1:
            raise DiswotError(
                f"study {self.study_name!r} has one objective (the score), so it has no Pareto front: search a new "
                "`study` with `objectives` score,params (or flops, latency), or leave out `pareto` for its best students"
            )
        return pareto_front(self.study)

    def budget_best(self, budget: str | dict[str, float]) -> tuple[FrozenTrial | None, str]:
        """The best student within ``budget`` (``"params=1M,flops=300M"``) and where it was taken from."""
        from .pareto import budget_best, parse_budget

        return budget_best(self.study, parse_budget(budget) if isinstance(budget, str) else budget)

    def trial(self, number: int | None = None) -> FrozenTrial:
        """The COMPLETE trial ``number``, or by default the recommended one (a multi-objective
        study's best score); a missing or unfinished trial is one line."""
        study = self.study
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if number is None:
            if not complete:
                raise DiswotError(f"study {study.study_name!r} has no completed trial; run diswot search first")
            if len(study.directions) == 1:
                return recommended_trial(study) or complete[0]  # the best pick score, else the best score
            return top_trials(study, 1)[0]  # the best score
        trials = study.get_trials(deepcopy=False)
        match = [t for t in trials if t.number == number]
        if not match:
            raise DiswotError(f"study {study.study_name!r} has no trial {number} (trials 0..{len(trials) - 1})")
        if match[0].state != TrialState.COMPLETE:
            raise DiswotError(f"trial {number} is {match[0].state.name}, not COMPLETE; choose a completed trial")
        return match[0]

    # -- the students -------------------------------------------------------------------------------

    def student(self, trial: int | FrozenTrial | None = None, *, distilled: bool = True) -> nn.Module:
        """Trial ``trial``'s student (default: the recommended one) as an ``nn.Module``: with the
        weights ``distill`` recorded on the trial when there are any (and ``distilled``), else
        initialised as the search scored it (the study's seed and init, its first repeat)."""
        from .distill import trial_student

        from ._scoped import seeded
        from .init import initialise

        chosen = trial if isinstance(trial, FrozenTrial) else self.trial(trial)
        config = self.config
        space, arch = trial_student(chosen, config.space)
        first = config.seed * 1000  # the initialisation the search scored (its first repeat)
        with seeded(first):
            module: nn.Module = space.build(arch, num_classes=self._num_classes(space.default_num_classes))
            initialise(module, config.init, seed=first if self._drawn() == "layer" else None)
        if distilled and record.DISTILL_ARTIFACT in chosen.user_attrs:
            self._load_distilled(module, chosen)
        return module

    def _drawn(self) -> str:
        """How the study drew its inits: its record's (``stream`` for one made before the choice), else the config's."""
        recorded = self.record
        return recorded.config.drawn if recorded is not None else self.config.drawn

    def _num_classes(self, default: int) -> int:
        recorded = self.record
        classes = recorded.config.num_classes if recorded else self.config.num_classes
        return classes or default

    def _load_distilled(self, module: nn.Module, trial: FrozenTrial) -> None:
        """Load the distilled checkpoint artifact of ``trial`` into ``module``."""
        from optuna.artifacts import FileSystemArtifactStore

        from .checkpoint import load_checkpoint, load_model_state

        artifact_id = str(trial.user_attrs[record.DISTILL_ARTIFACT])
        folder = default_artifact_dir(self.storage)
        try:
            with FileSystemArtifactStore(str(folder)).open_reader(artifact_id) as reader:
                data = reader.read()
        except Exception:
            raise DiswotError(
                f"trial {trial.number}'s distilled checkpoint (artifact {artifact_id}) is not in {folder}; "
                "load the student with `distilled` False, or distil it again"
            ) from None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "checkpoint.pt"
            path.write_bytes(data)
            load_model_state(module, load_checkpoint(path)["model"], what=f"trial {trial.number}'s student")

    def distill(
        self,
        out: str | Path | None = None,
        *,
        trial: int | None = None,
        options: DistillOptions | None = None,
        reporter: Callable[[DistEnv], ContextManager[Reporter]] | None = None,
        on_start: Callable[[DistillPlan], None] | None = None,
        **recipe: Any,
    ) -> DistillResult | None:
        """Distil trial ``trial``'s student (default: the recommended one) into the run folder ``out``
        and record the result on the trial (:func:`~.distill.distill`). ``recipe`` are
        :class:`~.distill.DistillOptions` fields (``dataset``, ``epochs``, ``teacher_weights``, ...)."""
        from .distill import DistillOptions, distill

        if options is None:
            if out is None:
                raise DiswotError("distillation needs a run folder: pass `out` DIR")
            options = DistillOptions(out=str(out), **recipe)
        elif out is not None or recipe:
            changes: dict[str, Any] = {**recipe, **({"out": str(out)} if out is not None else {})}
            options = replace(options, **changes)
        chosen = self.trial(trial)
        result = distill(self.study, chosen, options, storage=self.storage, reporter=reporter, on_start=on_start)
        self._study = None  # the trial's attributes changed: read them again
        return result

    def export(self, out: str | Path, *, trial: int | None = None, distilled: bool = True) -> ExportResult:
        """Export trial ``trial``'s student (default: the recommended one; its distilled weights when
        there are any) to the new folder ``out``: a ``torch.export`` program with a dynamic batch and
        its state dict, checked against the module on a probe batch (:func:`~.export.export`)."""
        from .export import export, export_folder

        folder = export_folder(out)  # refused before the student is built
        chosen = self.trial(trial)
        module = self.student(chosen, distilled=distilled)
        space = self.config.space
        info = {
            "study": self.study_name,
            "trial": chosen.number,
            "space": space,
            "arch": chosen.user_attrs.get(record.ARCH),
            "distilled": distilled and record.DISTILL_ARTIFACT in chosen.user_attrs,
        }
        return export(module, folder, image_size=self._image_size(), info=info)

    def _image_size(self) -> int:
        from diswot.spaces import get_space

        config = self.config
        return config.image_size or get_space(config.space).image_size
