"""Callbacks for what is not training: U2S category similarity, confusion analysis, visuals."""

from lightning_modules.callbacks.checkpoint import LastCheckpoint
from lightning_modules.callbacks.csm import (
    CategorySimilarityCallback,
    InitWeightsFromCheckpoint,
    U2SStageFreezing,
)
from lightning_modules.callbacks.epoch_summary import EpochSummary
from lightning_modules.callbacks.evaluation import (
    AccuracyVsClips,
    ConfusionAnalysis,
    PredictionCSVWriter,
    ReversedTimeEvaluation,
    TestPredictionsWriter,
    VideoPredictionWriter,
)
from lightning_modules.callbacks.visualization import (
    FilterResponseVisualizer,
    U2SMaskVisualizer,
    WeightSimilarityVisualizer,
)

__all__ = [
    "CategorySimilarityCallback",
    "InitWeightsFromCheckpoint",
    "LastCheckpoint",
    "U2SStageFreezing",
    # evaluation and analysis (issue 6)
    "AccuracyVsClips",
    "ConfusionAnalysis",
    "EpochSummary",
    "FilterResponseVisualizer",
    "PredictionCSVWriter",
    "ReversedTimeEvaluation",
    "TestPredictionsWriter",
    "U2SMaskVisualizer",
    "VideoPredictionWriter",
    "WeightSimilarityVisualizer",
]
