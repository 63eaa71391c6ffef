"""The diswot library: training-free student architecture search for knowledge distillation (DisWOT, Dong et al.,
CVPR 2023) on Optuna.

The library's face, as ``import optuna`` is Optuna's::

    import diswot

    search = diswot.Search.open(diswot.SearchConfig(space="s0", teacher="resnet20"), "sqlite:///diswot.db")
    search.run(n_trials=30)
    student = search.student()  # the recommended student, an nn.Module

Every name is imported on first use, so that ``import diswot`` (and ``diswot --help``) does not
wait for torch. The rooms stay importable on their own: :mod:`diswot.spaces`, :mod:`diswot.proxies`,
:mod:`diswot.samplers`, :mod:`diswot.storage` and :mod:`diswot.pipeline`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from diswot.pipeline._lazy import lazy_attribute

if TYPE_CHECKING:
    from diswot.pipeline.config import SearchConfig
    from diswot.pipeline.distill import DistillOptions, distill
    from diswot.pipeline.errors import DiswotError
    from diswot.pipeline.evaluation import rank, score
    from diswot.pipeline.export import export
    from diswot.pipeline.search import run_search
    from diswot.pipeline.handle import Search
    from diswot.pipeline.teachers import list_teachers
    from diswot.proxies import list_proxies
    from diswot.spaces import list_spaces

__all__ = [
    "DistillOptions",
    "DiswotError",
    "Search",
    "SearchConfig",
    "distill",
    "export",
    "list_proxies",
    "list_spaces",
    "list_teachers",
    "rank",
    "run_search",
    "score",
]

#: name -> the module that defines it, imported on first use
_LAZY = {
    "DistillOptions": "diswot.pipeline.distill",
    "DiswotError": "diswot.pipeline.errors",
    "Search": "diswot.pipeline.handle",
    "SearchConfig": "diswot.pipeline.config",
    "distill": "diswot.pipeline.distill",
    "export": "diswot.pipeline.export",
    "list_proxies": "diswot.proxies",
    "list_spaces": "diswot.spaces",
    "list_teachers": "diswot.pipeline.teachers",
    "rank": "diswot.pipeline.evaluation",
    "run_search": "diswot.pipeline.search",
    "score": "diswot.pipeline.evaluation",
}


_lazy = lazy_attribute(__name__, _LAZY)


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("diswot")
        except PackageNotFoundError:  # pragma: no cover - a checkout that is not installed
            return "unknown"
    return _lazy(name)
