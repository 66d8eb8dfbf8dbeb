"""Lightning glue: the recognizer that joins backbone and head, evaluation helpers, callbacks."""

from lightning_modules.evaluation import VideoResults
from lightning_modules.recognizer import VideoRecognizer

__all__ = ["VideoRecognizer", "VideoResults"]
