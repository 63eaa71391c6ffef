"""The evolutionary Optuna sampler (regularised evolution, DisWOT Algorithm 1).

:class:`EvolutionSampler` is an ordinary :class:`optuna.samplers.BaseSampler`; :func:`lineage`
reads which parent a trial was mutated from (the ``LINEAGE_KEY`` system attribute).
"""

from ._evolution import LINEAGE_KEY, EvolutionSampler, lineage

__all__ = ["LINEAGE_KEY", "EvolutionSampler", "lineage"]
