"""The papers' analyses as plain functions (no Lightning needed): confusion analysis, spatial and
temporal contribution Φ/Ψ, prediction files, figures, and reporting to loggers/files.

The callbacks in :mod:`lightning_modules.callbacks` run them during ``test``/``predict``;
``python cli.py analyze ...`` (:mod:`lightning_modules.analysis.commands`) runs them on result
files afterwards.
"""

from lightning_modules.analysis.confusion import (
    ConfusedPair,
    PairComparison,
    compare_confusions,
    compare_group_accuracy,
    confusion_matrix,
    group_confusion,
    load_class_groups,
    most_confused_pairs,
    normalize_groups,
    per_class_accuracy,
    per_group_accuracy,
)
from lightning_modules.analysis.contribution import (
    average_contribution,
    contribution_from_files,
    load_accuracy,
    spatial_temporal_contribution,
)
from lightning_modules.analysis.predictions import load_predictions, save_predictions

__all__ = [
    "ConfusedPair",
    "PairComparison",
    "average_contribution",
    "compare_confusions",
    "compare_group_accuracy",
    "confusion_matrix",
    "contribution_from_files",
    "group_confusion",
    "load_accuracy",
    "load_class_groups",
    "load_predictions",
    "most_confused_pairs",
    "normalize_groups",
    "per_class_accuracy",
    "per_group_accuracy",
    "save_predictions",
    "spatial_temporal_contribution",
]
