"""Lightning glue: the recognizer that joins backbone and head, evaluation helpers, callbacks.

Every callback is importable from here as well as from ``lightning_modules.callbacks``.
"""

from lightning_modules.callbacks import *  # noqa: F403 (the callbacks' own __all__)
from lightning_modules.callbacks import __all__ as _callbacks
from lightning_modules.evaluation import VideoResults
from lightning_modules.recognizer import VideoRecognizer

__all__ = ["VideoRecognizer", "VideoResults", *_callbacks]
