"""The evolutionary Optuna sampler (regularised evolution, DisWOT Algorithm 1).

:class:`EvolutionSampler` is an ordinary :class:`optuna.samplers.BaseSampler`; :func:`lineage`
reads which parent a trial was mutated from (the ``LINEAGE_KEY`` system attribute). Its
strategies can be replaced: ``selection=`` (:class:`RegularizedSelection`,
:class:`SMSEMOASelection` or another :class:`BaseSelection`) and ``child_generation=``
(:class:`MutationChildGeneration`).
"""

from ._child_generation import MutationChildGeneration
from ._evolution import LINEAGE_KEY, EvolutionSampler, lineage
from ._selection import BaseSelection, RegularizedSelection, SMSEMOASelection

__all__ = [
    "LINEAGE_KEY",
    "BaseSelection",
    "EvolutionSampler",
    "MutationChildGeneration",
    "RegularizedSelection",
    "SMSEMOASelection",
    "lineage",
]
