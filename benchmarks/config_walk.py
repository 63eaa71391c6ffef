"""Where a search's configuration travels: the modules a ``run_search`` call hands its config to.

``python benchmarks/config_walk.py`` runs a small S0 search (synthetic probe data, a
temporary SQLite file, 4 trials) under a profiler and follows the :class:`SearchConfig` object: every call that
receives it as an argument is one step of the walk. It prints

- the modules entered: the distinct library modules whose functions receive the config;
- the module crossings: calls that receive it from a function of another module (how often a
  reader following the config has to open another file), and the busiest module;
- the climbs back: crossings into a module that is already on the stack of functions holding the
  config (a reader who left a file has to come back to it).

The same script runs on any commit (``PYTHONPATH`` or an editable install of that checkout), so a
restructuring is judged by before/after figures (BENCHMARKS.md, "The shape of the code").
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import types
from pathlib import Path
from typing import Any


def _module(code: types.CodeType, roots: tuple[str, ...]) -> str | None:
    """The library module of ``code`` (``pipeline/search.py``), or None outside the packages."""
    path = Path(code.co_filename).resolve().as_posix()
    for root in roots:
        if path.startswith(root):
            rel = path[len(root) :].lstrip("/")
            return None if rel.startswith("tests/") else rel
    return None


def walk(n_trials: int) -> dict[str, Any]:
    """Run the search with every ``SearchConfig`` noting the module of each read of its fields."""
    import diswot.pipeline as dp
    from diswot.pipeline import SearchConfig, run_search

    root = Path(dp.__file__).resolve().parent.parent.as_posix()
    reads: list[str] = []

    def traced(self: SearchConfig, name: str) -> Any:
        if not name.startswith("__"):
            mod = _module(sys._getframe(1).f_code, (root,))
            if mod is not None and (not reads or reads[-1] != mod):
                reads.append(mod)
        return object.__getattribute__(self, name)

    config = SearchConfig(
        space="s0",
        teacher="resnet20",
        dataset="synthetic",
        batch_size=8,
        image_size=16,
        device="cpu",
        num_classes=10,
        reference_size=8,
    )
    SearchConfig.__getattribute__ = traced  # type: ignore[method-assign]  (every SearchConfig, copies included)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            run_search(config, f"sqlite:///{tmp}/walk.db", n_trials=n_trials, progress=False)
        finally:
            del SearchConfig.__getattribute__  # type: ignore[misc]
    reads = [m for m in reads if m != "pipeline/config.py"]  # the config reading itself
    steps = [m for i, m in enumerate(reads) if i == 0 or reads[i - 1] != m]
    entered = collections.Counter(steps)
    climbs = sum(1 for i, m in enumerate(steps) if m in steps[:i])
    busiest, times = entered.most_common(1)[0] if entered else ("-", 0)
    return {
        "modules": len(entered),
        "crossings": max(len(steps) - 1, 0),
        "climbs_back": climbs,
        "busiest": f"{busiest} ({times})",
        "entries": dict(entered.most_common()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1)
    args = parser.parse_args()
    out = walk(args.trials)
    print(
        f"modules entered {out['modules']}, crossings {out['crossings']}, climbs back {out['climbs_back']},"
        f" busiest {out['busiest']}"
    )
    print("entries: " + ", ".join(f"{m} {n}" for m, n in out["entries"].items()))


if __name__ == "__main__":
    main()
