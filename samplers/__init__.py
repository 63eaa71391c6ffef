"""The evolutionary Optuna sampler (regularised evolution, DisWOT Algorithm 1) and its mutations."""

from ._evolution import LINEAGE_KEY, EvolutionSampler, lineage
from ._mutation import (
    DEFAULT_WIDTH_FACTORS,
    adjacent_value,
    group_blocks,
    mutate,
    mutate_width,
    other_choice,
    param_block,
    param_role,
    scale_width,
    shrink,
    smaller_value,
)
from ._realize import Candidate, RecordingTrial, is_compatible, random_valid_params, realize, sample_value

__all__ = [
    "DEFAULT_WIDTH_FACTORS",
    "LINEAGE_KEY",
    "Candidate",
    "EvolutionSampler",
    "RecordingTrial",
    "adjacent_value",
    "group_blocks",
    "is_compatible",
    "lineage",
    "mutate",
    "mutate_width",
    "other_choice",
    "param_block",
    "param_role",
    "random_valid_params",
    "realize",
    "sample_value",
    "scale_width",
    "shrink",
    "smaller_value",
]
