"""EvolutionSampler on a plain Optuna objective: no torch, no DisWOT pipeline.

A toy network of three stages; a stage of depth 0 is absent, otherwise it has a kernel and a
width (a conditional search space, like DisWOT's S2). The objective rewards width x depth, and
the constraint caps that cost, so the best candidates sit right at the limit: the situation a
parameter limit creates in a DisWOT search. The sampler never proposes a candidate over it.

    python examples/evolution_sampler.py --n-trials 200
    python examples/evolution_sampler.py --n-trials 200 --storage sqlite:///example.db   # resumable
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

import optuna

from diswot.samplers import EvolutionSampler, MutationChildGeneration, lineage

LIMIT = 1_000  # the largest allowed cost


def suggest(trial: optuna.trial.BaseTrial) -> None:
    """The search space: three stages; depth 0 removes a stage and its other parameters."""
    for i in (1, 2, 3):
        if trial.suggest_int(f"stage{i}.depth", 0, 4) == 0:
            continue
        trial.suggest_categorical(f"stage{i}.kernel", [3, 5, 7])
        trial.suggest_int(f"stage{i}.width", 8, 256, step=8)


def cost(params: dict[str, Any]) -> int:
    return sum(params.get(f"stage{i}.width", 0) * params[f"stage{i}.depth"] for i in (1, 2, 3))


def constraint(params: dict[str, Any]) -> str | None:
    """``None`` when the candidate is allowed, else the reason (checked before it is proposed)."""
    return None if cost(params) <= LIMIT else f"cost {cost(params)} > {LIMIT}"


def objective(trial: optuna.Trial) -> float:
    suggest(trial)
    kernels: int = sum(trial.params.get(f"stage{i}.kernel", 0) for i in (1, 2, 3))
    return cost(trial.params) + kernels / 10


def main(argv: list[str] | None = None) -> optuna.Study:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=200)
    parser.add_argument("--storage", default=None, help="an Optuna storage URL (default: in memory)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # the strategies hold their own settings: widths mutated in multiples of 8, as the space's step
    mutation = MutationChildGeneration(width_multiple=8, max_width=256)
    sampler = EvolutionSampler(suggest_func=suggest, constraint=constraint, seed=args.seed, child_generation=mutation)
    study = optuna.create_study(
        study_name="evolution-example",
        storage=args.storage,
        load_if_exists=True,
        direction="maximize",
        sampler=sampler,
    )
    study.optimize(objective, n_trials=args.n_trials)

    origins = Counter(lineage(t)[0] for t in study.trials)
    print(f"best value {study.best_value:g} (limit {LIMIT}) with {study.best_params}")
    print(f"{len(study.trials)} trials: " + ", ".join(f"{n} {o}" for o, n in sorted(origins.items(), key=str)))
    return study


if __name__ == "__main__":
    main()
