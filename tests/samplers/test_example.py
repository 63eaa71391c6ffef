"""The runnable sampler example (``examples/evolution_sampler.py``) and loading ``samplers/`` by OptunaHub."""

from __future__ import annotations

import runpy
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from diswot.samplers import EvolutionSampler, lineage

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "evolution_sampler.py"


def test_example_finds_a_candidate_near_the_limit_and_never_breaks_it() -> None:
    example = runpy.run_path(str(EXAMPLE))
    study = example["main"](["--n-trials", "80"])
    trials = study.trials
    assert len(trials) == 80 and all(t.state == TrialState.COMPLETE for t in trials)
    assert all(example["constraint"](t.params) is None for t in trials)
    assert sum(lineage(t)[0] == "mutation" for t in trials) >= 50  # 20 random, then evolution
    assert study.best_value > 0.9 * example["LIMIT"]


@pytest.mark.integration
def test_example_runs_without_torch() -> None:
    code = textwrap.dedent(f"""
        import runpy, sys
        sys.argv = ["evolution_sampler.py", "--n-trials", "30"]
        runpy.run_path({str(EXAMPLE)!r}, run_name="__main__")
        assert "torch" not in sys.modules, "the sampler example imported torch"
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "best value" in out.stdout and "30 trials" in out.stdout


@pytest.mark.integration
def test_optunahub_loads_the_samplers_folder_as_a_package() -> None:
    """``optunahub.load_local_module`` imports ``samplers/`` on its own, as it would a registry package."""
    code = textwrap.dedent(f"""
        import sys
        import optuna, optunahub
        module = optunahub.load_local_module(package="samplers", registry_root={str(ROOT)!r})
        def objective(trial):
            return trial.suggest_int("depth", 1, 7, step=2) + trial.suggest_categorical("kernel", [3, 5, 7])
        sampler = module.EvolutionSampler(suggest_func=lambda t: objective(t), population_size=4, tournament_size=2, seed=0)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study.optimize(objective, n_trials=20)
        assert study.best_value == 14, study.best_value
        assert "torch" not in sys.modules and "diswot" not in sys.modules
        print(type(sampler).__module__)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("samplers._evolution")


def test_readme_sampler_example_runs() -> None:
    """The first Python block of the README's sampler section runs as printed."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### The sampler in your own Optuna study", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    study = namespace["study"]
    assert isinstance(study, optuna.Study) and len(study.trials) == 200
    assert 900 < study.best_value <= 1000
    strategies = section.split("```python\n", 2)[2].split("```", 1)[0]  # the strategies' own settings
    exec(compile(strategies, "README.md", "exec"), namespace)
    sampler = namespace["sampler"]
    assert isinstance(sampler, EvolutionSampler) and sampler._child_generation is namespace["mutation"]
