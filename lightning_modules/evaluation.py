"""Multi-view evaluation: fold views into the batch, average per video, count each video once."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Average = Literal["prob", "score", "max"]


def average_views(logits: Tensor, how: Average = "prob") -> Tensor:
    """Combine the views of each video.

    Args:
        logits: ``[B, V, K]`` per-view logits.
        how: ``"prob"`` mean of softmax probabilities (default), ``"score"`` mean of logits,
            ``"max"`` element-wise max of probabilities.

    Returns:
        ``[B, K]`` per-video scores (probabilities for ``prob``/``max``, logits for ``score``).
    """
    if how == "prob":
        return logits.softmax(-1).mean(1)
    if how == "score":
        return logits.mean(1)
    if how == "max":
        return logits.softmax(-1).amax(1)
    raise ValueError(f"test_average must be 'prob', 'score' or 'max', got {how!r}")


def unique_by_index(index: Tensor, *values: Tensor) -> tuple[Tensor, ...]:
    """Keep the first occurrence of every dataset index (undoes DistributedSampler padding).

    Returns ``(index, *values)`` sorted by index, one row per distinct video.
    """
    order = torch.argsort(index, stable=True)
    index = index[order]
    keep = torch.ones_like(index, dtype=torch.bool)
    keep[1:] = index[1:] != index[:-1]
    return (index[keep], *(value[order][keep] for value in values))
