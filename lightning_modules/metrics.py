"""The one definition of the classification metrics every stage and analysis reports.

``acc1`` (top-1), ``acc5`` (top-5, or top-K with fewer than five classes) and ``mean_class_acc``
(the mean of per-class recalls, UCF101/HMDB51's and the unified-analysis paper's
"mean class accuracy") — one torchmetrics :class:`~torchmetrics.MetricCollection`. Validation
updates it batch by batch (synchronised across DDP ranks by torchmetrics); test, predict, the
reversed-time test and the analyses score already gathered, de-duplicated per-video rows with
:func:`score`, locally on every rank (each rank holds every row, so nothing is reduced again).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

#: the metric names of :func:`classification_metrics`, in logging order
METRICS = ("acc1", "acc5", "mean_class_acc")


def classification_metrics(num_classes: int, *, sync: bool = True) -> MetricCollection:
    """``acc1``, ``acc5`` and ``mean_class_acc`` over ``num_classes`` classes.

    Args:
        num_classes: ``K``; ``acc5`` is top-``min(5, K)``.
        sync: reduce the states across DDP ranks at ``compute`` (streaming validation); off for
            rows that are already gathered from every rank.

    ``update(scores [N, K], target [N])`` takes logits or probabilities (only their order
    matters).
    """
    options = {"sync_on_compute": sync}
    return MetricCollection({
        "acc1": MulticlassAccuracy(num_classes, top_k=1, average="micro", **options),
        "acc5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro",
                                   **options),
        "mean_class_acc": MulticlassAccuracy(num_classes, average="macro", **options),
    })


@torch.no_grad()
def score(scores: Tensor, label: Tensor) -> dict[str, float]:
    """:func:`classification_metrics` of per-video ``scores`` ``[N, K]`` against ``label``
    ``[N]``; rows labelled ``-1`` (an unlabelled split) are left out. Empty: ``{}``."""
    labelled = label >= 0
    if not labelled.any():
        return {}
    metrics = classification_metrics(scores.shape[-1], sync=False).to(scores.device)
    metrics.update(scores[labelled].float(), label[labelled])
    return {name: float(value) for name, value in metrics.compute().items()}


def video_metric_names(suffix: str = "") -> dict[str, str]:
    """Logged names of the test metrics of video-level scores: ``acc1`` → ``test/acc1_video``,
    ``acc5`` → ``test/acc5_video``, ``mean_class_acc`` → ``test/mean_class_acc``, each with
    ``suffix`` appended (``""`` for the final branch, ``"_<branch>"``, ``"_reversed"``)."""
    return {"acc1": f"test/acc1_video{suffix}", "acc5": f"test/acc5_video{suffix}",
            "mean_class_acc": f"test/mean_class_acc{suffix}"}


__all__ = ["METRICS", "classification_metrics", "score", "video_metric_names"]
