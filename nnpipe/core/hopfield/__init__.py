"""Hopfield associative memories: the classical binary network and the modern one.

- ``network``: :class:`HopfieldNetwork` (store bipolar patterns, recall noisy ones);
- ``rules``: the learning rules and the exact integer weight grid;
- ``dynamics``: async and sync recall;
- ``states``: bipolar data, the :func:`energy`, and what kind of state a network
  ends in (:func:`classify`);
- ``modern``: :class:`ModernHopfield`, the continuous network of Ramsauer et al.;
- ``capacity``: recall quality against load, :func:`capacity_curve`.
"""

from .capacity import COLUMNS, capacity_curve
from .dynamics import RecallResult
from .modern import ModernHopfield, ModernRecallResult
from .network import HEBBIAN_CAPACITY, UPDATES, CapacityWarning, HopfieldNetwork
from .rules import RULES, LearningRule
from .states import (
    LABELS,
    Classification,
    check_bipolar,
    classify,
    classify_states,
    energy,
    energy_trajectories,
    to_bipolar,
)

__all__ = [
    "COLUMNS",
    "HEBBIAN_CAPACITY",
    "LABELS",
    "RULES",
    "UPDATES",
    "CapacityWarning",
    "Classification",
    "HopfieldNetwork",
    "LearningRule",
    "ModernHopfield",
    "ModernRecallResult",
    "RecallResult",
    "capacity_curve",
    "check_bipolar",
    "classify",
    "classify_states",
    "energy",
    "energy_trajectories",
    "to_bipolar",
]
