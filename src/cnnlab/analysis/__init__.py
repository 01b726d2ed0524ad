"""Inspection: parameters, MACs, activation memory, receptive fields, and the lectures' claims."""
from .receptive_field import ReceptiveField, receptive_field, stacked_receptive_field
from .summary import ACTIVATION_RULE, ModelSummary, count_macs, count_params, summarize

__all__ = [
    "ACTIVATION_RULE",
    "ModelSummary",
    "ReceptiveField",
    "count_macs",
    "count_params",
    "receptive_field",
    "stacked_receptive_field",
    "summarize",
]
